// Every call of toxiproxy-java 2.1.7 against one server, as a transcript: one JSON
// line per call, {"call", "result"} or {"call", "error"}.
// Usage: java -cp CLASSES:LIB/* JavaCalls HOST PORT UPSTREAM_HOST:PORT

import com.google.gson.Gson;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import eu.rekawek.toxiproxy.Proxy;
import eu.rekawek.toxiproxy.ToxiproxyClient;
import eu.rekawek.toxiproxy.model.Toxic;
import eu.rekawek.toxiproxy.model.ToxicDirection;
import eu.rekawek.toxiproxy.model.toxic.Latency;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

public class JavaCalls {
    interface Call {
        Object run() throws Exception;
    }

    private static final Gson GSON = new Gson();

    static void step(String call, Call body) {
        JsonObject line = new JsonObject();
        line.addProperty("call", call);
        try {
            Object result = body.run();
            line.add("result", result == null ? JsonNull.INSTANCE : GSON.toJsonTree(result));
        } catch (Exception e) {
            line.addProperty("error", e.getClass().getSimpleName() + ": " + e.getMessage());
        }
        System.out.println(GSON.toJson(line));
    }

    static JsonObject proxy(Proxy p) {
        JsonObject o = new JsonObject();
        o.addProperty("name", p.getName());
        o.addProperty("listen", p.getListen());
        o.addProperty("upstream", p.getUpstream());
        o.addProperty("enabled", p.isEnabled());
        return o;
    }

    static JsonObject toxic(Toxic t) {
        JsonObject o = new JsonObject();
        o.addProperty("class", t.getClass().getSimpleName());
        o.addProperty("name", t.getName());
        o.addProperty("stream", t.getStream().name());
        o.addProperty("toxicity", t.getToxicity());
        return o;
    }

    static List<String> names(List<? extends Object> items) throws Exception {
        List<String> out = new ArrayList<>();
        for (Object item : items) {
            out.add(item instanceof Proxy ? ((Proxy) item).getName() : ((Toxic) item).getName());
        }
        Collections.sort(out);
        return out;
    }

    // Write, read the echo, then close (a half-close first loses the reply on Toxiproxy).
    static String roundTrip(String listen) throws IOException {
        int colon = listen.lastIndexOf(':');
        try (Socket socket = new Socket(listen.substring(0, colon), Integer.parseInt(listen.substring(colon + 1)))) {
            socket.setSoTimeout(5000);
            OutputStream out = socket.getOutputStream();
            out.write("ping".getBytes(StandardCharsets.US_ASCII));
            InputStream in = socket.getInputStream();
            byte[] buffer = new byte[4];
            int got = 0;
            while (got < 4) {
                int n = in.read(buffer, got, 4 - got);
                if (n < 0) {
                    break;
                }
                got += n;
            }
            return new String(buffer, 0, got, StandardCharsets.US_ASCII);
        }
    }

    public static void main(String[] args) throws Exception {
        ToxiproxyClient client = new ToxiproxyClient(args[0], Integer.parseInt(args[1]));
        String upstream = args[2];
        step("version", client::version);
        Proxy p = client.createProxy("java1", "127.0.0.1:0", upstream);
        step("createProxy", () -> proxy(p));
        step("roundTrip", () -> roundTrip(p.getListen()));
        step("getProxies", () -> names(client.getProxies()));
        step("getProxy", () -> proxy(client.getProxy("java1")));
        step("getProxyOrNull.missing", () -> client.getProxyOrNull("no-such-proxy"));
        step("getProxy.missing", () -> client.getProxy("no-such-proxy"));
        step("createProxy.duplicate", () -> client.createProxy("java1", "127.0.0.1:0", upstream));
        step("disable", () -> { p.disable(); return proxy(client.getProxy("java1")); });
        step("enable", () -> { p.enable(); return proxy(client.getProxy("java1")); });
        step("setUpstream", () -> { p.setUpstream(upstream); return proxy(client.getProxy("java1")); });
        step("setListen", () -> { p.setListen("127.0.0.1:0"); return proxy(client.getProxy("java1")); });
        Proxy current = client.getProxy("java1");
        step("roundTrip.afterListen", () -> roundTrip(current.getListen()));
        step("latency", () -> {
            Latency latency = current.toxics().latency("lat", ToxicDirection.DOWNSTREAM, 10).setJitter(1);
            latency.setToxicity(0.5f);
            Latency read = current.toxics().get("lat", Latency.class);
            JsonObject o = toxic(read);
            o.addProperty("latency", read.getLatency());
            o.addProperty("jitter", read.getJitter());
            return o;
        });
        step("setLatency", () -> current.toxics().get("lat", Latency.class).setLatency(20).getLatency());
        step("bandwidth", () -> toxic(current.toxics().bandwidth("bw", ToxicDirection.UPSTREAM, 100)));
        step("slowClose", () -> toxic(current.toxics().slowClose("sc", ToxicDirection.DOWNSTREAM, 10)));
        step("timeout", () -> toxic(current.toxics().timeout("to", ToxicDirection.UPSTREAM, 1000)));
        step("slicer", () -> toxic(current.toxics().slicer("sl", ToxicDirection.DOWNSTREAM, 10, 100)));
        step("limitData", () -> toxic(current.toxics().limitData("ld", ToxicDirection.UPSTREAM, 1000)));
        step("resetPeer", () -> toxic(current.toxics().resetPeer("rp", ToxicDirection.DOWNSTREAM, 1000)));
        step("toxics.getAll", () -> names(current.toxics().getAll()));
        step("toxics.get", () -> toxic(current.toxics().get("bw")));
        step("toxics.get.missing", () -> current.toxics().get("no-such-toxic"));
        step("toxic.duplicate", () -> current.toxics().latency("lat", ToxicDirection.DOWNSTREAM, 1));
        step("toxic.remove", () -> { current.toxics().get("lat").remove(); return names(current.toxics().getAll()); });
        step("reset", () -> { client.reset(); return names(client.getProxy("java1").toxics().getAll()); });
        step("delete", () -> { current.delete(); return names(client.getProxies()); });
        step("delete.missing", () -> { current.delete(); return null; });
    }
}
