// Every call of toxiproxy-node-client 4.1.0 against one server, as a transcript:
// one JSON line per call, {"call", "result"} or {"call", "error"}.
// Usage: node node_calls.js SERVER_URL UPSTREAM_HOST:PORT   (NODE_PATH: the client's install)
"use strict";
const net = require("net");
const { Toxiproxy } = require("toxiproxy-node-client");

const [url, upstream] = process.argv.slice(2);
const toxiproxy = new Toxiproxy(url);

function emit(call, outcome) {
  process.stdout.write(JSON.stringify({ call, ...outcome }) + "\n");
}

async function step(call, run) {
  try {
    const result = await run();
    emit(call, { result: result === undefined ? null : result });
    return result;
  } catch (err) {
    emit(call, { error: String(err && err.message) });
    return undefined;
  }
}

function roundTrip(listen) {
  const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.slice(listen.lastIndexOf(":") + 1))];
  // Write, read the echo, then close: a half-close first would lose the reply on
  // Toxiproxy, which closes both directions on the first FIN (a documented difference).
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port }, () => socket.write("ping"));
    let got = "";
    socket.setTimeout(5000, () => socket.destroy(new Error("timed out")));
    socket.on("data", (chunk) => {
      got += chunk;
      if (got.length >= 4) {
        socket.end();
        resolve(got);
      }
    });
    socket.on("end", () => resolve(got));
    socket.on("error", reject);
  });
}

async function main() {
  await step("getVersion", () => toxiproxy.getVersion());
  const proxy = await step("createProxy", async () =>
    (await toxiproxy.createProxy({ name: "node1", listen: "127.0.0.1:0", upstream })).toJson());
  const created = await toxiproxy.get("node1");
  await step("roundTrip", () => roundTrip(created.listen));
  await step("getAll", async () => Object.keys(await toxiproxy.getAll()).sort());
  await step("get", async () => (await toxiproxy.get("node1")).toJson());
  await step("update.disable", async () => (await created.update({ enabled: false, listen: created.listen, upstream })).toJson());
  await step("update.enable", async () => (await created.update({ enabled: true, listen: created.listen, upstream })).toJson());
  const toxic = await created.addToxic({
    name: "lat", type: "latency", stream: "downstream", toxicity: 1, attributes: { latency: 10, jitter: 1 },
  });
  emit("addToxic", { result: toxic.toJson() });
  await step("getToxic", async () => (await created.getToxic("lat")).toJson());
  await step("toxic.update", async () => (await toxic.update({ toxicity: 0.5, attributes: { latency: 20, jitter: 1 } })).toJson());
  await step("toxic.remove", () => toxic.remove());
  await step("roundTrip.afterToxic", () => roundTrip(created.listen));
  await step("populate", async () =>
    Object.keys(await toxiproxy.populate([{ name: "node2", listen: "127.0.0.1:0", upstream, enabled: true }])).sort());
  await step("reset", () => toxiproxy.reset());
  await step("get.missing", () => toxiproxy.get("no-such-proxy"));
  await step("createProxy.duplicate", () => toxiproxy.createProxy({ name: "node1", listen: "127.0.0.1:0", upstream }));
  await step("remove", () => created.remove());
  await step("remove.populated", async () => (await toxiproxy.get("node2")).remove());
  await step("getAll.end", async () => Object.keys(await toxiproxy.getAll()).sort());
  return proxy;
}

main().catch((err) => { emit("fatal", { error: String(err && err.stack) }); process.exitCode = 1; });
