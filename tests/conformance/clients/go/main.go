// Every call of Toxiproxy's Go client (v2.12.0) against one server, as a transcript:
// one JSON line per call, {"call", "result"} or {"call", "error"}. Toxiproxy's own
// api_test.go drives most of them; this adds the ones it does not (Version, Enable,
// Disable, the ToxicOptions forms) and keeps the transcript comparable with the
// other languages' programs.
// Usage: go-calls SERVER_URL UPSTREAM_HOST:PORT
package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2/client"
)

func emit(call string, result interface{}, err error) {
	line := map[string]interface{}{"call": call}
	if err != nil {
		line["error"] = err.Error()
	} else {
		line["result"] = result
	}
	out, _ := json.Marshal(line)
	fmt.Println(string(out))
}

func proxyJSON(p *toxiproxy.Proxy) map[string]interface{} {
	return map[string]interface{}{
		"name": p.Name, "listen": p.Listen, "upstream": p.Upstream, "enabled": p.Enabled,
		"toxics": len(p.ActiveToxics),
	}
}

func names(proxies map[string]*toxiproxy.Proxy) []string {
	out := []string{}
	for name := range proxies {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Write, read the echo, then close (a half-close first loses the reply on Toxiproxy).
func roundTrip(listen string) (string, error) {
	conn, err := net.DialTimeout("tcp", listen, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte("ping")); err != nil {
		return "", err
	}
	buffer := make([]byte, 4)
	got := 0
	for got < 4 {
		n, err := conn.Read(buffer[got:])
		got += n
		if err != nil {
			break
		}
	}
	return string(buffer[:got]), nil
}

func main() {
	url, upstream := os.Args[1], os.Args[2]
	client := toxiproxy.NewClient(url)

	version, err := client.Version()
	emit("Version", string(version), err)

	proxy, err := client.CreateProxy("go1", "127.0.0.1:0", upstream)
	if err != nil {
		emit("fatal", nil, err)
		os.Exit(1)
	}
	emit("CreateProxy", proxyJSON(proxy), nil)
	reply, err := roundTrip(proxy.Listen)
	emit("roundTrip", reply, err)

	all, err := client.Proxies()
	emit("Proxies", names(all), err)
	got, err := client.Proxy("go1")
	if err == nil {
		emit("Proxy", proxyJSON(got), nil)
	} else {
		emit("Proxy", nil, err)
	}
	_, err = client.Proxy("no-such-proxy")
	emit("Proxy.missing", nil, err)
	_, err = client.CreateProxy("go1", "127.0.0.1:0", upstream)
	emit("CreateProxy.duplicate", nil, err)

	emit("Disable", nil, proxy.Disable())
	got, _ = client.Proxy("go1")
	emit("Disable.read", proxyJSON(got), nil)
	emit("Enable", nil, proxy.Enable())
	got, _ = client.Proxy("go1")
	emit("Enable.read", proxyJSON(got), nil)

	toxic, err := proxy.AddToxic("lat", "latency", "downstream", 1, toxiproxy.Attributes{"latency": 10, "jitter": 1})
	emit("Proxy.AddToxic", toxic, err)
	toxic, err = proxy.UpdateToxic("lat", 0.5, toxiproxy.Attributes{"latency": 20})
	emit("Proxy.UpdateToxic", toxic, err)
	toxics, err := proxy.Toxics()
	emit("Proxy.Toxics", toxics, err)
	emit("Proxy.RemoveToxic", nil, proxy.RemoveToxic("lat"))
	emit("Proxy.RemoveToxic.missing", nil, proxy.RemoveToxic("lat"))

	options := &toxiproxy.ToxicOptions{
		ProxyName: "go1", ToxicName: "bw", ToxicType: "bandwidth", Stream: "upstream",
		Toxicity: 1, Attributes: toxiproxy.Attributes{"rate": 100},
	}
	toxic, err = client.AddToxic(options)
	emit("Client.AddToxic", toxic, err)
	options.Attributes = toxiproxy.Attributes{"rate": 50}
	options.Toxicity = 0.25
	toxic, err = client.UpdateToxic(options)
	emit("Client.UpdateToxic", toxic, err)
	_, err = client.AddToxic(options)
	emit("Client.AddToxic.duplicate", nil, err)
	emit("Client.RemoveToxic", nil, client.RemoveToxic(options))

	populated, err := client.Populate([]toxiproxy.Proxy{
		{Name: "go2", Listen: "127.0.0.1:0", Upstream: upstream, Enabled: true},
	})
	populatedNames := []string{}
	for _, p := range populated {
		populatedNames = append(populatedNames, p.Name)
	}
	emit("Populate", populatedNames, err)

	saved := client.NewProxy()
	saved.Name, saved.Listen, saved.Upstream = "go3", "127.0.0.1:0", upstream
	emit("Save.create", nil, saved.Save())
	saved.Enabled = true
	emit("Save.update", nil, saved.Save())
	reply, err = roundTrip(saved.Listen)
	emit("roundTrip.saved", reply, err)

	emit("ResetState", nil, client.ResetState())
	for _, name := range []string{"go1", "go2", "go3"} {
		p, err := client.Proxy(name)
		if err == nil {
			err = p.Delete()
		}
		emit("Delete."+name, nil, err)
	}
	emit("Delete.missing", nil, proxy.Delete())
	all, err = client.Proxies()
	emit("Proxies.end", names(all), err)
}
