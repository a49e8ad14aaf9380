package vmtest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/boards"
	"github.com/cairn-os/cairn/cluster/identity"
	"github.com/cairn-os/cairn/cluster/join"
	"github.com/cairn-os/cairn/image/inspect"
	"github.com/cairn-os/cairn/internal/nodeapi"
	"github.com/cairn-os/cairn/internal/qemu"
	"github.com/cairn-os/cairn/internal/registrytest"
)

// TestCluster boots a server and agents on one LAN with cairn vm, as a
// user boots a local cluster, and checks what only a running cluster
// proves. The server and the agent that joins are the local-cluster
// examples (configs/examples/lan-*.yaml) with the test's images and
// manifests added.
//
// cairn vm boots the two images on its LAN, each console line prefixed
// with the image's name, forwards the server's API and says the kubectl
// line that reaches it; it says when one VM stops, and Ctrl-C stops the
// rest. The server (its datastore SQLite on the data partition, the
// default) answers its API with the kubeconfig the build wrote: version,
// authentication, objects stored, controllers at work, Pod Security
// admission, the config's manifests applied and kept. A join with the
// cluster's token under the server's node name is refused for the name,
// and the server logs it (what an agent says when refused is cluster/join's
// error text, tested there). The agent, booted with the server, retries its
// joins until the server is up, then joins with the cluster's token; its
// node password is kept, and it becomes Ready. A
// Deployment of an image the test builds and bakes in runs behind a
// Service that a pod of an image the build pulled from a registry reaches
// by its DNS name. The agent updates itself from a channel on the host:
// an update whose cluster never becomes healthy (it names a server that is
// not there, and its joins back off more and more) is given up when its
// trial is over, and the agent is back on
// its committed slot, Ready, its Node saying why; a good update is
// committed once its node is Ready, the Node says its new build, and its
// pod comes back. Pods on the two nodes reach each other over the VXLAN
// pod network with their own addresses, a pod on the agent reaches a
// Service by its DNS name, and kubectl logs and exec reach both kubelets,
// port-forward the agent's. After a power cut the server, booted alone,
// still has its objects and the Deployment serves again; then it takes an
// update, pushed, and has its objects after that too. Last, the data
// partition the server wrote: a Secret is stored encrypted, a ConfigMap is
// not. (kine on PostgreSQL is tested in cluster/datastore, against a real
// PostgreSQL; a token with another secret in cluster/join.)
func TestCluster(t *testing.T) {
	needArm64(t)
	giveBack := turn(t, 2, 850)
	need(t, "sfdisk")
	env := []string{"CAIRN_CLUSTERS=" + t.TempDir()}
	dir := t.TempDir()
	hello := filepath.Join(dir, "hello.tar")
	helloImage(t, "arm64", hello)
	board, _ := boards.Get("qemu-arm64")
	// A registry holds a two-architecture hello image; the server's build
	// pulls the arm64 one, and no node ever sees the registry.
	reg := registrytest.Start(t)
	reg.Index("cairn/hello", "2",
		reg.Image("cairn/hello", "", "amd64", []string{"/hello"}, registrytest.File{Path: "hello", Mode: 0o755, Data: []byte("not for arm64")}),
		reg.Image("cairn/hello", "", "arm64", []string{"/hello"}, registrytest.File{Path: "hello", Mode: 0o755, Data: helloBinary(t, "arm64")}))
	pulled := reg.Host + "/cairn/hello:2"

	// The fleet's keys, which the images trust, and a channel on this
	// machine that the agent polls for updates.
	fleetDir, fleetCairn := newFleet(t, dir)
	env = append(env, "CAIRN_FLEET="+fleetDir)
	www := filepath.Join(dir, "www")
	channel := serveChannel(t, www)

	// build builds an image named name.img in a folder of its own from
	// config, with the hello image beside it; extra goes to cairn build,
	// and the build time is epoch when it is not 0.
	build := func(name, config string, epoch int64, extra ...string) string {
		sub := filepath.Join(dir, name)
		os.Mkdir(sub, 0o755)
		if err := os.Link(hello, filepath.Join(sub, "hello.tar")); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(sub, name+".img")
		benv := env
		if epoch != 0 {
			benv = append(slices.Clip(env), fmt.Sprint("SOURCE_DATE_EPOCH=", epoch))
		}
		if err := os.Rename(buildImageEnv(t, benv, "qemu-arm64", config, sub, extra...), img); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, 3<<30); err != nil {
			t.Fatal(err)
		}
		return img
	}
	os.Mkdir(filepath.Join(dir, "server"), 0o755)
	if err := os.WriteFile(filepath.Join(dir, "server", "site.yaml"), []byte(siteManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	srvConfig := example(t, "lan-server.yaml") + "  images: [hello.tar, " + pulled + "]\n  manifests: [site.yaml]\n"
	srvImg := build("server", srvConfig, serverBuilds[0])
	// The server's update, pushed at the end.
	os.Mkdir(filepath.Join(dir, "server-v2"), 0o755)
	os.WriteFile(filepath.Join(dir, "server-v2", "site.yaml"), []byte(siteManifest), 0o644)
	srvBundle := filepath.Join(dir, "server-2.cairnb")
	build("server-v2", srvConfig, serverBuilds[1], "--bundle", srvBundle)
	reg.Stop()
	agentConfig := example(t, "lan-agent.yaml") + "  images: [hello.tar]\nupdate:\n  url: " + channel + "\n  pollSeconds: 30\n"
	agentImg := build("agent-1", agentConfig, agentBuilds[0])
	// The agent's updates: one whose cluster never becomes healthy (it
	// names a server that is not there), and a good one.
	bundles := make([]string, 2)
	for i, config := range []string{
		strings.Replace(agentConfig, "server: https://192.168.77.1:6443", "server: https://192.168.77.9:6443", 1) + "  trialSeconds: 90\n",
		agentConfig,
	} {
		bundles[i] = filepath.Join(dir, fmt.Sprint("agent-", i+2, ".cairnb"))
		build(fmt.Sprint("agent-1-v", i+2), config, agentBuilds[i+1], "--bundle", bundles[i])
	}
	publish := func(bundle string) {
		t.Helper()
		os.MkdirAll(www, 0o755)
		os.Link(bundle, filepath.Join(www, filepath.Base(bundle)))
		if out, err := fleetCairn("publish", filepath.Join(www, filepath.Base(bundle)), "--channel", filepath.Join(www, "stable.json")); err != nil {
			t.Fatalf("cairn publish: %v\n%s", err, out)
		}
	}

	// The images' order gives their LAN cards 52:54:00:77:00:01 and :02,
	// which their configs name.
	// The API on a port of its own, which the kubectl line then names, and
	// the join endpoint, for a join the test sends itself.
	port, joinPort := freePort(t), freePort(t)
	for joinPort == port {
		joinPort = freePort(t)
	}
	vm := startCairnVM(t, nil, "--forward", fmt.Sprintf("%d:6443", port), "--forward", fmt.Sprintf("%d:%d", joinPort, join.Port), srvImg, agentImg)
	server, agent := vm.node("server"), vm.node("agent-1")
	serverReady(t, server)
	kubeconfig := filepath.Join(dir, "server", "kubeconfig")
	base := vm.kubectl(t, kubeconfig, "server")
	if want := fmt.Sprintf("https://127.0.0.1:%d", port); base != want {
		t.Errorf("cairn vm's kubectl line names the API at %s, want --server %s", base, want)
	}
	if !strings.Contains(server.Output(), `msg="datastore ready" backend=sqlite`) {
		t.Errorf("the server did not say its datastore is SQLite\nconsole:\n%s", server.Output())
	}
	api := newKubeClient(t, kubeconfig, base)
	kubectl := kubectlFor(t, kubeconfig, api.base)
	checkControlPlane(t, server, api)
	manifestsKept := checkManifests(t, server, kubectl, api)

	// The cluster's token, but the server's node name: the token alone does
	// not let a machine take over a node. The refusal says why, and the
	// server logs it. (A token with another secret is refused by the same
	// path: cluster/join's TestWrongSecretIsRefused.)
	impostorJoin(t, srvImg, joinPort)
	refusal := regexp.MustCompile(`join refused: reserved name or address" from=\S+ node=server `)
	eventually(t, time.Minute, "the server to log the refusal", func() bool { return refusal.MatchString(server.Output()) })

	if _, err := agent.WaitFor(`msg="joined the server"`, 0, 5*time.Minute); err != nil {
		t.Fatalf("the agent did not join: %v\nconsole:\n%s\nserver console:\n%s", err, agent.Output(), server.Output())
	}
	if _, err := agent.WaitFor("health: cluster healthy status=node=ready", 0, serverTimeout); err != nil {
		t.Fatalf("the agent's node did not become Ready: %v\nconsole:\n%s", err, agent.Output())
	}
	t.Logf("agent node ready after %s", time.Since(vm.started).Round(time.Second))
	// It booted with the server, so its first joins may have found no
	// server yet (how many depends on the boot's timing; the back-off is
	// checked on the update below, whose server is never there).
	t.Logf("the agent failed %d joins before the server was up", len(joinWaits(t, agent.Output(), "192.168.77.1")))
	// The nodes' pod networks are 10.42.N.0/24, in the order they
	// registered, which the concurrent boot leaves open.
	cidrs := map[string]string{}
	for _, n := range []string{"server", "agent-1"} {
		var node struct{ Spec struct{ PodCIDR string } }
		api.json(t, "GET", "/api/v1/nodes/"+n, nil, 200, &node)
		cidrs[n] = node.Spec.PodCIDR
		if !regexp.MustCompile(`^10\.42\.\d+\.0/24$`).MatchString(cidrs[n]) {
			t.Errorf("node %s has pod network %q", n, cidrs[n])
		}
	}
	if cidrs["server"] == cidrs["agent-1"] {
		t.Errorf("both nodes have pod network %s", cidrs["server"])
	}
	if _, err := agent.WaitFor(`msg="route to a node's pods" node=server podCIDR=`+cidrs["server"]+` via=192.168.77.1`, 0, 2*time.Minute); err != nil {
		t.Errorf("the agent has no route to the server's pods: %v\nconsole:\n%s", err, agent.Output())
	}
	if !regexp.MustCompile(`msg="node joined" node=agent-1 ips=\S*192\.168\.77\.2`).MatchString(server.Output()) {
		t.Errorf("the server did not log the join over the LAN\nconsole:\n%s", server.Output())
	}

	// The join kept the agent's node password (a hash) for its next joins.
	var secret struct{ Data map[string]string }
	api.json(t, "GET", "/api/v1/namespaces/kube-system/secrets/agent-1.node-password.cairn", nil, 200, &secret)
	if len(secret.Data["hash"]) < 64 {
		t.Errorf("the agent's node password Secret: %v", secret.Data)
	}
	// Both Ready, as kubectl shows it; a node's status can lag its
	// kubelet for a while when the host is busy (it runs two VMs).
	var out string
	for range 3 {
		if out = kubectl.must("get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}"); strings.TrimSpace(out) == "agent-1=True\nserver=True" {
			break
		}
		time.Sleep(20 * time.Second)
	}
	if strings.TrimSpace(out) != "agent-1=True\nserver=True" {
		t.Errorf("nodes:\n%s", out)
	}
	// Every node says which system it runs, for kubectl get nodes -L: the
	// version its image was built with (bin/cairn's).
	info, err := inspect.BuildInfo(srvImg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the nodes' cairn.dev/os-version labels", func() bool {
		var nodes struct {
			Items []struct {
				Metadata struct {
					Name   string
					Labels map[string]string
				}
			}
		}
		api.json(t, "GET", "/api/v1/nodes", nil, 200, &nodes)
		versions := map[string]string{}
		for _, n := range nodes.Items {
			versions[n.Metadata.Name] = n.Metadata.Labels["cairn.dev/os-version"]
		}
		return info.Version != "" && versions["server"] == info.Version && versions["agent-1"] == info.Version
	})
	checkNodeOS(t, api, "agent-1", agentBuilds[0], "")

	// The agent pulls an update whose cluster never becomes healthy: it
	// boots it on trial, its node never becomes Ready (it cannot join),
	// and when the trial's 90 s are over the agent boots its committed
	// slot again, rejoins, and its Node says why. The server's checks go
	// on meanwhile.
	agentAt := len(agent.Output())
	publish(bundles[0])

	// The server's node runs a Deployment from the baked image, with no
	// registry, and a pod of the pulled image reaches its Service by name.
	kubectl.must("apply", "-f", writeManifest(t, dir, helloManifest))
	if out, err := kubectl.run("rollout", "status", "deployment/hello", "--timeout=10m"); err != nil {
		t.Fatalf("deployment: %v\n%s\nconsole:\n%s", err, out, server.Output())
	}
	runClient(t, api, "client-1", "server", pulled, "http://hello.default.svc.cluster.local/", "hello from hello-")
	if out := kubectl.logs("deployment/hello", "GET /"); !strings.Contains(out, "hello: serving on :8080") || !strings.Contains(out, "GET /") {
		t.Errorf("kubectl logs of the server's pod: %q", out)
	}
	if out := kubectl.must("exec", "deployment/hello", "--", "/hello", "get", "http://127.0.0.1:8080/exec"); !strings.Contains(out, "hello from hello-") {
		t.Errorf("kubectl exec on the server: %q", out)
	}

	var trialAt int
	for _, line := range []string{"cairn: cmdline: booting slot=b", "slot b is on trial", "giving up the slot on trial; rebooting into the committed slot",
		"cairn: ready slot=a", "health: cluster healthy status=node=ready"} {
		if agentAt, err = agent.WaitFor(line, agentAt, serverTimeout); err != nil {
			t.Fatalf("the agent's update that never becomes healthy: %v\nconsole:\n%s", err, agent.Output())
		}
		if trialAt == 0 {
			trialAt = agentAt
		}
	}
	// On trial it tried to join all the while: each failed join is one log
	// line with the reason and the wait before the next try, which grows
	// up to its bound.
	waits := joinWaits(t, agent.Output()[trialAt:agentAt], "192.168.77.9")
	t.Logf("the agent on trial failed %d joins, waiting %v after them", len(waits), waits)
	if len(waits) < 2 {
		t.Errorf("the agent on trial failed %d joins to a server that is not there, want 2 or more\nconsole:\n%s", len(waits), agent.Output())
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] || waits[i] == waits[i-1] && waits[i] < join.Backoff.Max {
			t.Errorf("the agent waited %v between failed joins: the back-off does not grow", waits)
			break
		}
	}
	checkNodeOS(t, api, "agent-1", agentBuilds[0], "rolled-back ")
	if note := nodeOS(t, api, "agent-1").lastUpdate; !strings.Contains(note, fmt.Sprint("(build ", agentBuilds[1], ") in slot b")) || !strings.Contains(note, "not healthy within 1m30s") {
		t.Errorf("agent-1's last update: %q", note)
	}

	kubectl.must("apply", "-f", writeManifest(t, dir, webPod("web-srv", "server")+"---\n"+webPod("web-edge", "agent-1")+`---
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
	ipOf := func(pod string) string {
		var p struct{ Status struct{ PodIP string } }
		api.json(t, "GET", "/api/v1/namespaces/default/pods/"+pod, nil, 200, &p)
		return p.Status.PodIP
	}
	srvPod := ipOf("web-srv")

	// The good update: the agent pulls it, boots it on trial, commits it
	// once its node is Ready, and says its new build; its pod comes back.
	edgeBefore := containerID(t, api, "web-edge")
	publish(bundles[1])
	if agentAt, err = agent.WaitFor("cairn: cmdline: booting slot=b", agentAt, serverTimeout); err != nil {
		t.Fatalf("the agent's update: %v\nconsole:\n%s", err, agent.Output())
	}
	// The commit and the health line come in either order.
	for _, line := range []string{"slot committed: the node is healthy slot=b", "health: cluster healthy status=node=ready"} {
		if _, err = agent.WaitFor(line, agentAt, serverTimeout); err != nil {
			t.Fatalf("the agent's update: %v\nconsole:\n%s", err, agent.Output())
		}
	}
	checkNodeOS(t, api, "agent-1", agentBuilds[2], "committed ")
	eventually(t, 10*time.Minute, "the agent's pod to run again after its update", func() bool {
		now := containerID(t, api, "web-edge")
		return now != "" && now != edgeBefore
	})
	if out, err := kubectl.run("wait", "--for=condition=Ready", "pod/web-edge", "--timeout=5m"); err != nil {
		t.Fatalf("web-edge after the agent's update: %v\n%s\nagent console:\n%s", err, out, agent.Output())
	}
	edgePod := ipOf("web-edge")

	// Across nodes both ways, by pod address, and by Service name from the agent.
	startClient(t, api, "from-edge", "agent-1", "cairn.test/hello:1", "http://"+srvPod+":8080/from-edge", "hello from web-srv")
	startClient(t, api, "from-srv", "server", "cairn.test/hello:1", "http://"+edgePod+":8080/from-srv", "hello from web-edge")
	startClient(t, api, "dns-edge", "agent-1", "cairn.test/hello:1", "http://web.default.svc.cluster.local/by-name", "hello from web-srv")
	for _, c := range []string{"from-edge", "from-srv", "dns-edge"} {
		waitSucceeded(t, api, c)
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
	t.Cleanup(func() { forward.Process.Kill(); forward.Wait() })
	eventually(t, 2*time.Minute, "kubectl port-forward to the agent's pod", func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/forwarded", pf))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "hello from web-edge")
	})

	manifestsKept()
	for _, n := range []*lanConsole{server, agent} {
		if !strings.Contains(n.Output(), "\ncairn: ready slot=a") {
			t.Errorf("the console of %s, its lines prefixed %q, lacks cairn: ready", n.name, n.prefix)
		}
	}

	// The agent's power cut, which cairn vm says; the server goes on. Then
	// Ctrl-C: a power cut of the server, which then boots alone, on a LAN
	// of its own; its objects live on the data partition.
	before := helloPods(t, api)
	bootBefore := nodeBootID(t, api, "server")
	vm.killQEMU(t, agentImg)
	stopped := regexp.MustCompile(`(?m)^cairn: agent-1 stopped \(`)
	eventually(t, time.Minute, "cairn vm to say agent-1 stopped", func() bool { return stopped.MatchString(vm.console.String()) })
	giveBack(1)
	api.json(t, "GET", "/api/v1/namespaces/default/configmaps/kept", nil, 200, nil)
	select {
	case err := <-vm.exited:
		t.Fatalf("cairn vm stopped (%v) with agent-1", err)
	default:
	}
	vm.interrupt(t)
	lan, err := qemu.NewLAN()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lan.Close() })
	nodePort := freePort(t)
	alone, err := qemu.Start(qemu.Options{Board: board, Image: srvImg, Reboot: true, LAN: lan.Join(), LANMAC: "52:54:00:77:00:01",
		Forward: []string{fmt.Sprintf("%d:6443", port), fmt.Sprintf("%d:%d", nodePort, nodeapi.Port)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(alone.Kill)
	restarted := time.Now()
	serverReady(t, alone)
	// The kubelet's boot id, by which cairnd tells this boot's Ready from
	// the one the Node kept from before the cut (the health an update's
	// trial waits for).
	if now := nodeBootID(t, api, "server"); bootBefore == "" || now == bootBefore {
		t.Errorf("the server's node has boot id %q after the power cut, %q before: cairnd took the last boot's Ready for this one's", now, bootBefore)
	}
	var cm struct{ Data map[string]string }
	api.json(t, "GET", "/api/v1/namespaces/default/configmaps/kept", nil, 200, &cm)
	if cm.Data["v"] != "plain-configmap-value-4711" {
		t.Errorf("config map after the power cut: %v", cm.Data)
	}
	// The Deployment's status is the one from before the cut until the
	// kubelet reports again, so rollout status says nothing yet: wait for
	// the restarted pod to be the Service's one ready endpoint.
	eventually(t, 10*time.Minute, "the hello pod to serve again after the power cut", func() bool {
		now := helloPods(t, api)
		for _, c := range now.containers {
			if slices.Contains(before.containers, c) {
				return false
			}
		}
		return len(now.ready) == 1 && slices.Equal(now.endpoints, now.ready)
	})
	t.Logf("the hello pod served again %s after the server's restart", time.Since(restarted).Round(time.Second))
	// The short name, through the search path. The pod succeeds only if the
	// answer came from the hello pod; it logs where the answer came from.
	runClient(t, api, "client-2", "server", "cairn.test/hello:1", "http://hello/", "hello from hello-")
	t.Logf("client-2 reached it by its short name %s after the restart", time.Since(restarted).Round(time.Second))

	// The server's update, pushed: committed once its API and its node are
	// ready, and its objects are there after it.
	at := len(alone.Output())
	if out, err := fleetCairn("upgrade", srvBundle, "--node", fmt.Sprintf("127.0.0.1:%d", nodePort)); err != nil {
		t.Fatalf("cairn upgrade of the server: %v\n%s", err, out)
	}
	at = waitLine(t, alone, "cairn: cmdline: booting slot=b", at)
	updated := time.Now()
	for _, line := range []string{"slot committed: the node is healthy slot=b", "health: cluster healthy status=apiserver=ready,node=ready"} {
		if _, err := alone.WaitFor(line, at, serverTimeout); err != nil {
			t.Fatalf("the server's update: %v\nconsole:\n%s", err, alone.Output())
		}
	}
	t.Logf("the server's update committed %s after its reboot", time.Since(updated).Round(time.Second))
	cm.Data = nil
	api.json(t, "GET", "/api/v1/namespaces/default/configmaps/kept", nil, 200, &cm)
	if cm.Data["v"] != "plain-configmap-value-4711" {
		t.Errorf("config map after the server's update: %v", cm.Data)
	}
	checkNodeOS(t, api, "server", serverBuilds[1], "committed ")
	alone.Kill()

	_, parts := partitions(t, srvImg)
	data, err := os.ReadFile(extract(t, srvImg, parts[3]))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("plain-configmap-value-4711")) {
		t.Error("the config map is not in the datastore on the data partition")
	}
	if !bytes.Contains(data, []byte("/registry/minions/agent-1")) {
		t.Error("the agent's Node is not in the datastore on the data partition")
	}
	if bytes.Contains(data, []byte("secret-value-must-not-be-on-disk-0815")) {
		t.Error("the secret is stored in plain text")
	}
	if !bytes.Contains(data, []byte("k8s:enc:secretbox:v1:cairn-1")) {
		t.Error("no secretbox-encrypted object in the datastore")
	}
}

// joinWaits are the waits after each failed join to server in an agent's
// console.
func joinWaits(t *testing.T, console, server string) []time.Duration {
	t.Helper()
	var waits []time.Duration
	for _, m := range regexp.MustCompile(`msg="joining the server failed; retrying" server=https://`+regexp.QuoteMeta(server)+`:6443 err=.* in=(\S+)`).FindAllStringSubmatch(console, -1) {
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatalf("a failed join's wait %q: %v", m[1], err)
		}
		waits = append(waits, d)
	}
	return waits
}

// agentBuilds are the build times of the agent's image and its updates,
// serverBuilds the server's.
var (
	agentBuilds  = [3]int64{1780000000, 1780100000, 1780200000}
	serverBuilds = [2]int64{1780000000, 1780100000}
)

type osOfNode struct{ version, build, lastUpdate string }

// nodeOS is what a node's labels and annotation say of its system.
func nodeOS(t *testing.T, api *kubeClient, node string) osOfNode {
	t.Helper()
	var n struct {
		Metadata struct{ Labels, Annotations map[string]string }
	}
	api.json(t, "GET", "/api/v1/nodes/"+node, nil, 200, &n)
	return osOfNode{n.Metadata.Labels["cairn.dev/os-version"], n.Metadata.Labels["cairn.dev/os-build"], n.Metadata.Annotations["cairn.dev/last-update"]}
}

// checkNodeOS waits for a node to say it runs build and that its last
// update's result begins with last ("" for none).
func checkNodeOS(t *testing.T, api *kubeClient, node string, build int64, last string) {
	t.Helper()
	var got osOfNode
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Second) {
		got = nodeOS(t, api, node)
		if got.build == fmt.Sprint(build) && strings.HasPrefix(got.lastUpdate, last) && (last != "" || got.lastUpdate == "") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s says %+v, want build %d and a last update beginning %q", node, got, build, last)
		}
	}
}

// containerID is the id of a pod's first container, "" while it has none.
func containerID(t *testing.T, api *kubeClient, pod string) string {
	t.Helper()
	var p struct {
		Status struct {
			ContainerStatuses []struct{ ContainerID string }
		}
	}
	api.json(t, "GET", "/api/v1/namespaces/default/pods/"+pod, nil, 200, &p)
	if len(p.Status.ContainerStatuses) == 0 {
		return ""
	}
	return p.Status.ContainerStatuses[0].ContainerID
}

// nodeBootID is the boot id a node's kubelet last posted.
func nodeBootID(t *testing.T, api *kubeClient, node string) string {
	t.Helper()
	var n struct {
		Status struct{ NodeInfo struct{ BootID string } }
	}
	api.json(t, "GET", "/api/v1/nodes/"+node, nil, 200, &n)
	return n.Status.NodeInfo.BootID
}

// serverReady waits for a server's API and its node to be ready, as init
// sees them through cairnd's health (what an update's commit waits for).
func serverReady(t *testing.T, vm console) {
	t.Helper()
	start := time.Now()
	if _, err := vm.WaitFor(`msg="apiserver ready"`, 0, serverTimeout); err != nil {
		t.Fatalf("%v\nconsole:\n%s", err, vm.Output())
	}
	t.Logf("apiserver ready after %s of waiting", time.Since(start).Round(time.Second))
	if _, err := vm.WaitFor("health: cluster healthy status=apiserver=ready", 0, time.Minute); err != nil {
		t.Errorf("%v\nconsole:\n%s", err, vm.Output())
	}
	if _, err := vm.WaitFor("health: cluster healthy status=apiserver=ready,node=ready", 0, serverTimeout); err != nil {
		t.Fatalf("the server's node did not become Ready: %v\nconsole:\n%s", err, vm.Output())
	}
	t.Logf("server node ready after %s of waiting", time.Since(start).Round(time.Second))
}

// example is a config of configs/examples.
func example(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// impostorJoin asks the server, through the forwarded join port, to let a
// node join under the server's own name with the cluster's token, from
// the image's token file, and checks that the server refuses the name.
func impostorJoin(t *testing.T, srvImg string, joinPort int) {
	t.Helper()
	tok, err := identity.ParseToken(strings.TrimSpace(rootFile(t, srvImg, "usr/lib/cairn/cluster/token")))
	if err != nil {
		t.Fatal(err)
	}
	req, _, err := join.NewRequest("server", strings.Repeat("p", join.MinPassword), []net.IP{net.ParseIP("192.168.77.3")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(req)
	hr, _ := http.NewRequest("POST", fmt.Sprintf("https://127.0.0.1:%d%s", joinPort, join.Path), bytes.NewReader(body))
	hr.Header.Set("Authorization", "Bearer "+tok.Secret)
	hr.Header.Set("Content-Type", "application/json")
	// The server's certificate is checked by the agents (cluster/join); here
	// the answer matters.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Do(hr)
	if err != nil {
		t.Fatalf("the join endpoint: %v", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(answer), "the name or address belongs to the cluster's servers: no agent may join as node") {
		t.Errorf("a join under the server's node name: %s %s", resp.Status, answer)
	}
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
  # It stays through its node's reboot (an update), however long.
  tolerations:
    - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}
    - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute}
`, name, name, node)
}
