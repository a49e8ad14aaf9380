package vmtest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/internal/cli"
	"github.com/cairn-os/cairn/internal/qemu"
)

// TestServerAndAgent boots a server and agents on one QEMU network (a
// socket the VMs share, besides each one's own user-mode network). An agent
// whose token has the wrong secret is refused, says so, and retries with
// back-off. An agent with the cluster's token under the server's node name
// is refused for the name. An agent with the cluster's token joins, its
// node password is kept, and it becomes Ready;
// the cluster is kept in a real PostgreSQL (kine), Secrets encrypted;
// pods on the two nodes reach each other over the VXLAN pod network with
// their own addresses, a pod on the agent reaches a Service by its DNS
// name, and kubectl logs, exec and port-forward reach the agent's kubelet.
func TestServerAndAgent(t *testing.T) {
	need(t, "qemu-system-aarch64", "sfdisk")
	pg := startPostgres(t)
	t.Setenv("CAIRN_CLUSTERS", t.TempDir())
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello.tar")
	helloImage(t, "arm64", hello)
	board, _ := boards.Get("qemu-arm64")

	type node struct{ name, mac, ip, cluster, hostname string } // hostname: name unless set
	// The server keeps the cluster in a real PostgreSQL on the build
	// machine (the host is 10.0.2.2 on QEMU's user network).
	srv := node{"srv", "52:54:00:77:00:01", "192.168.77.1", fmt.Sprintf("  role: server\n  nodeIP: 192.168.77.1\n  datastore: postgres://kine@10.0.2.2:%d/kine?sslmode=disable\n", pg.port), ""}
	edge := node{"edge", "52:54:00:77:00:02", "192.168.77.2", "  role: agent\n  server: https://192.168.77.1:6443\n", ""}
	build := func(n node, extra string) string {
		sub := filepath.Join(dir, n.name)
		if n.hostname == "" {
			n.hostname = n.name
		}
		os.Mkdir(sub, 0o755)
		if err := os.Link(hello, filepath.Join(sub, "hello.tar")); err != nil {
			t.Fatal(err)
		}
		cfg := fmt.Sprintf("apiVersion: cairn.dev/v1alpha1\nkind: Node\nhostname: %s\n"+
			"network:\n  interfaces:\n    - mac: %q\n      addresses: [%s/24]\n    - name: eth*\n"+
			"cluster:\n  name: lan\n  images: [hello.tar]\n%s%s", n.hostname, n.mac, n.ip, n.cluster, extra)
		img := buildImage(t, "qemu-arm64", cfg, sub)
		if err := os.Truncate(img, 3<<30); err != nil {
			t.Fatal(err)
		}
		return img
	}
	srvImg := build(srv, "")
	edgeImg := build(edge, "")
	// The cluster's CA, another secret: the agent talks to the server, which turns it away.
	token, err := os.ReadFile(filepath.Join(os.Getenv("CAIRN_CLUSTERS"), "lan", "token"))
	if err != nil {
		t.Fatal(err)
	}
	bad := node{"bad", "52:54:00:77:00:03", "192.168.77.3", edge.cluster, ""}
	wrong := regexp.MustCompile(`\.[a-z0-9]+$`).ReplaceAllString(strings.TrimSpace(string(token)), ".0123456789abcdef0123456789abcdef")
	badImg := build(bad, "  token: "+wrong+"\n")
	// The cluster's token, but the server's node name: the token alone does
	// not let a machine take over a node.
	impostor := node{"impostor", "52:54:00:77:00:04", "192.168.77.4", edge.cluster, "srv"}
	impostorImg := build(impostor, "")

	lan := freePort(t)
	port := freePort(t)
	start := func(img, mac, lanOpt string, forward ...string) *qemu.VM {
		vm, err := qemu.Start(qemu.Options{Board: board, Image: img, Forward: forward,
			LAN: fmt.Sprintf("%s=127.0.0.1:%d", lanOpt, lan), LANMAC: mac})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(vm.Kill)
		return vm
	}
	server := start(srvImg, srv.mac, "listen", fmt.Sprintf("%d:6443", port))
	if _, err := server.WaitFor("health: cluster healthy status=apiserver=ready,node=ready", 0, serverTimeout); err != nil {
		t.Fatalf("the server's node did not become Ready: %v\nconsole:\n%s", err, server.Output())
	}
	t.Logf("server node ready after %s", server.Since().Round(time.Second))
	if !strings.Contains(server.Output(), `msg="datastore ready" backend=postgres`) {
		t.Errorf("the server did not say its datastore is PostgreSQL\nconsole:\n%s", server.Output())
	}

	// Wrong secret: refused, said on both sides, retried with back-off.
	refused := start(badImg, bad.mac, "connect")
	// Each refusal is one log line with the server's reason and the wait
	// before the next try, which grows.
	const refusal = `msg="joining the server failed; retrying" server=https://192.168.77.1:6443 err="the server refused to let this node join: 401 Unauthorized: the join token's secret is not this cluster's; build the agent with the token from the cluster's secrets folder" in=`
	for _, wait := range []string{"5s", "10s"} {
		if _, err := refused.WaitFor(refusal+wait, 0, 5*time.Minute); err != nil {
			t.Fatalf("the agent with a wrong token did not report its refusal and retry: %v\nconsole:\n%s", err, refused.Output())
		}
	}
	if !strings.Contains(server.Output(), "join refused: wrong token secret") {
		t.Errorf("the server did not log the refusal\nconsole:\n%s", server.Output())
	}
	if strings.Contains(refused.Output(), "joined the server") {
		t.Error("the agent with a wrong token joined")
	}
	refused.Kill()

	// The right token under the server's node name: refused for the name,
	// which belongs to the servers (the apiserver's certificate has it).
	refused = start(impostorImg, impostor.mac, "connect")
	if _, err := refused.WaitFor(`403 Forbidden: the name or address belongs to the cluster's servers: no agent may join as node`, 0, 5*time.Minute); err != nil {
		t.Fatalf("an agent taking the server's node name was not refused: %v\nconsole:\n%s", err, refused.Output())
	}
	if !regexp.MustCompile(`join refused: reserved name or address" from=\S+ node=srv `).MatchString(server.Output()) {
		t.Errorf("the server did not log the refusal\nconsole:\n%s", server.Output())
	}
	refused.Kill()

	agent := start(edgeImg, edge.mac, "connect")
	if _, err := agent.WaitFor(`msg="joined the server"`, 0, 5*time.Minute); err != nil {
		t.Fatalf("the agent did not join: %v\nconsole:\n%s\nserver console:\n%s", err, agent.Output(), server.Output())
	}
	if _, err := agent.WaitFor("health: cluster healthy status=node=ready", 0, serverTimeout); err != nil {
		t.Fatalf("the agent's node did not become Ready: %v\nconsole:\n%s", err, agent.Output())
	}
	t.Logf("agent node ready after %s", agent.Since().Round(time.Second))
	if _, err := agent.WaitFor(`msg="route to a node's pods" node=srv podCIDR=10.42.0.0/24`, 0, 2*time.Minute); err != nil {
		t.Errorf("the agent has no route to the server's pods: %v\nconsole:\n%s", err, agent.Output())
	}

	kubectl := kubectlFor(t, filepath.Join(dir, "srv", "kubeconfig"), fmt.Sprintf("https://127.0.0.1:%d", port))
	// The join kept the agent's node password (a hash) for its next joins.
	if out := kubectl.must("get", "secret", "-n", "kube-system", "edge.node-password.cairn", "-o", "jsonpath={.data.hash}"); len(out) < 64 {
		t.Errorf("the edge node's password Secret: %q", out)
	}
	if out := kubectl.must("get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status} {.spec.podCIDR}{\"\\n\"}{end}"); !strings.Contains(out, "srv=True 10.42.0.0/24") || !regexp.MustCompile(`edge=True 10\.42\.\d+\.0/24`).MatchString(out) {
		t.Errorf("nodes:\n%s", out)
	}
	// Every node says which system it runs, for kubectl get nodes -L.
	eventually(t, time.Minute, "the nodes' cairn.dev/os-version labels", func() bool {
		out := kubectl.must("get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.cairn\.dev/os-version}{"\n"}{end}`)
		return strings.Contains(out, "srv="+cli.Version+"\n") && strings.Contains(out, "edge="+cli.Version+"\n")
	})
	// What the API stored is rows in PostgreSQL, Secrets encrypted.
	if n := pg.query(t, "SELECT count(DISTINCT name) FROM kine WHERE name IN ('/registry/minions/srv', '/registry/minions/edge')"); n != "2" {
		t.Errorf("the nodes in PostgreSQL: %s of 2", n)
	}
	if n := pg.query(t, "SELECT count(*) FROM kine WHERE name = '/registry/secrets/kube-system/edge.node-password.cairn' AND position('k8s:enc:secretbox:v1:cairn-1:'::bytea in value) = 1"); n == "0" {
		t.Error("the node password Secret is not an encrypted row in PostgreSQL")
	}
	kubectl.must("apply", "-f", writeManifest(t, dir, webPod("web-srv", "srv")+"---\n"+webPod("web-edge", "edge")+`---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web-srv}
  ports: [{port: 80, targetPort: 8080}]
`))
	if out, err := kubectl.run("wait", "--for=condition=Ready", "pod/web-srv", "pod/web-edge", "--timeout=10m"); err != nil {
		t.Fatalf("web pods: %v\n%s\nserver console:\n%s\nagent console:\n%s", err, out, server.Output(), agent.Output())
	}
	ipOf := func(pod string) string { return kubectl.must("get", "pod", pod, "-o", "jsonpath={.status.podIP}") }
	srvPod, edgePod := ipOf("web-srv"), ipOf("web-edge")

	// Across nodes both ways, by pod address, and by Service name from the agent.
	runClientOn(t, kubectl, "from-edge", "edge", "http://"+srvPod+":8080/from-edge")
	runClientOn(t, kubectl, "from-srv", "srv", "http://"+edgePod+":8080/from-srv")
	runClientOn(t, kubectl, "dns-edge", "edge", "http://web.default.svc.cluster.local/by-name")
	for pod, want := range map[string]string{"from-edge": "hello from web-srv", "from-srv": "hello from web-edge", "dns-edge": "hello from web-srv"} {
		if out := kubectl.logs(pod, want); !strings.Contains(out, want) {
			t.Errorf("%s: logs %q, want %q", pod, out, want)
		}
	}
	// The server pod saw the agent's pod address, not a masqueraded one.
	clientIP := ipOf("from-edge")
	if out := kubectl.logs("web-srv", "GET /from-edge from "+clientIP+":"); !strings.Contains(out, "GET /from-edge from "+clientIP+":") {
		t.Errorf("web-srv did not see the client pod's own address %s:\n%s", clientIP, out)
	}
	// logs and exec go to the agent's kubelet, whose serving certificate the server issued at the join.
	if out := kubectl.must("logs", "web-edge"); !strings.Contains(out, "GET /from-srv from") {
		t.Errorf("kubectl logs of the agent's pod: %q", out)
	}
	if out := kubectl.must("exec", "web-edge", "--", "/hello", "get", "http://127.0.0.1:8080/exec"); !strings.Contains(out, "hello from web-edge") {
		t.Errorf("kubectl exec on the agent: %q", out)
	}
	pf := freePort(t)
	forward := kubectl.command("port-forward", "pod/web-edge", fmt.Sprintf("%d:8080", pf))
	if err := forward.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { forward.Process.Kill(); forward.Wait() }()
	eventually(t, 2*time.Minute, "kubectl port-forward to the agent's pod", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/forwarded", pf))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "hello from web-edge")
	})
}

// webPod is a pod of the hello image serving on 8080 on a given node.
func webPod(name, node string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, labels: {app: %s}}
spec:
  nodeName: %s
  containers:
    - name: web
      image: cairn.test/hello:1
      imagePullPolicy: Never
      args: [serve, ":8080"]
`, name, name, node)
}

// runClientOn runs a pod on node that fetches url once, and waits for it.
func runClientOn(t *testing.T, k kubectl, name, node, url string) {
	t.Helper()
	k.must("run", name, "--image=cairn.test/hello:1", "--image-pull-policy=Never", "--restart=Never",
		`--overrides={"spec":{"nodeName":"`+node+`"}}`, "--", "get", url)
	waitSucceeded(t, k, name)
}
