package vmtest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-os/cairn/image/oci"
)

// helloImage builds testdata/hello for arch and packs it as an OCI archive
// named cairn.test/hello:1.
func helloImage(t *testing.T, arch, out string) {
	t.Helper()
	data := helloBinary(t, arch)
	var buf bytes.Buffer
	err := oci.Write(&buf, oci.Image{Ref: "cairn.test/hello:1", Arch: arch, Entrypoint: []string{"/hello"},
		Files: []oci.File{{Path: "/hello", Mode: 0o755, Data: data}}, Created: time.Unix(1780000000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// helloBinary builds testdata/hello for arch.
func helloBinary(t *testing.T, arch string) []byte { return testProgram(t, "hello", arch) }

// testProgram builds testdata/NAME, statically, for Linux on arch, with
// the Makefile's compiler flags (GOFLAGS there), so that it reuses the
// standard library that make compiled for init: on a machine with an
// empty build cache, other flags cost a compile of it, 85 s.
func testProgram(t *testing.T, name, arch string) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-trimpath", "-gcflags=all=-dwarf=false", "-ldflags=-s -w", "-o", bin, "./testdata/"+name)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/%s: %v\n%s", name, err, b)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// helloManifest is a Deployment of the hello image and its Service.
const helloManifest = `apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  replicas: 1
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      nodeSelector: {kubernetes.io/hostname: server}
      containers:
      - name: hello
        image: cairn.test/hello:1
        imagePullPolicy: Never
        args: [serve, ":8080"]
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /ready, port: 8080}
          periodSeconds: 5
---
apiVersion: v1
kind: Service
metadata: {name: hello}
spec:
  selector: {app: hello}
  ports: [{port: 80, targetPort: 8080}]
`

func writeManifest(t *testing.T, dir, text string) string {
	f := filepath.Join(dir, "manifest.yaml")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// kubectl runs kubectl (the arm64 cairnd that make test-binaries built)
// against the API at base.
type kubectl struct {
	t                *testing.T
	argv             []string // runs cairnd as kubectl
	kubeconfig, base string
}

// kubectlFor is the kubectl of the images under test: arm64 cairnd's,
// run through QEMU's user-mode emulation on another host, so that no test
// compiles Kubernetes for the host too.
func kubectlFor(t *testing.T, kubeconfig, base string) kubectl {
	argv := []string{filepath.Join(deviceBinaries(t), "linux-arm64", "cairnd")}
	if runtime.GOARCH != "arm64" {
		need(t, "qemu-aarch64-static")
		argv = append([]string{"qemu-aarch64-static"}, argv...)
	}
	return kubectl{t: t, argv: argv, kubeconfig: kubeconfig, base: base}
}

func (k kubectl) run(args ...string) (string, error) {
	out, err := k.command(args...).CombinedOutput()
	k.t.Logf("kubectl %s\n%s", strings.Join(args, " "), bytes.TrimSpace(out))
	return string(out), err
}

func (k kubectl) command(args ...string) *exec.Cmd {
	argv := slices.Concat(k.argv[1:], []string{"kubectl", "--kubeconfig", k.kubeconfig, "--server", k.base, "--request-timeout=2m"}, args)
	return exec.Command(k.argv[0], argv...)
}

// logs returns a pod's log once it contains want, or what it has after a
// minute: the last lines of a finished container can reach its log file
// just after the pod is reported done.
func (k kubectl) logs(pod, want string) string {
	k.t.Helper()
	out := k.must("logs", pod)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(out, want) && time.Now().Before(deadline); {
		time.Sleep(3 * time.Second)
		out = k.must("logs", pod)
	}
	return out
}

// must runs kubectl and fails the test if it fails.
func (k kubectl) must(args ...string) string {
	k.t.Helper()
	out, err := k.run(args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// runClient runs a pod of image (a hello image) on node that fetches url
// once and waits for it to succeed, which it does only if the answer has
// want; its log says where the answer came from.
func runClient(t *testing.T, api *kubeClient, name, node, image, url, want string) {
	t.Helper()
	startClient(t, api, name, node, image, url, want)
	waitSucceeded(t, api, name)
}

// startClient starts the pod of runClient without waiting for it. It and
// waitSucceeded ask the API directly: kubectl here is emulated, seconds of
// CPU a run beside the VMs, and the test keeps it for what it alone does.
func startClient(t *testing.T, api *kubeClient, name, node, image, url, want string) {
	t.Helper()
	pod := map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": name}, "spec": map[string]any{
		"nodeName": node, "restartPolicy": "Never",
		"containers": []any{map[string]any{"name": name, "image": image, "imagePullPolicy": "Never", "args": []string{"get", url, want}}},
	}}
	api.json(t, "POST", "/api/v1/namespaces/default/pods", pod, 201, nil)
}

// waitSucceeded waits for a pod to finish well, or fails with its story.
func waitSucceeded(t *testing.T, api *kubeClient, name string) {
	t.Helper()
	var pod struct {
		Status struct {
			Phase             string
			ContainerStatuses []json.RawMessage
		}
	}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(2 * time.Second) {
		api.json(t, "GET", "/api/v1/namespaces/default/pods/"+name, nil, 200, &pod)
		if pod.Status.Phase == "Succeeded" {
			return
		}
		if pod.Status.Phase == "Failed" || time.Now().After(deadline) {
			break
		}
	}
	logs := api.text(t, "/api/v1/namespaces/default/pods/"+name+"/log")
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	// The first line says why, for a log that keeps only first lines.
	t.Fatalf("pod %s did not succeed: phase %s, its log ends %q\ncontainers %s\nlogs:\n%s", name, pod.Status.Phase, lines[len(lines)-1], pod.Status.ContainerStatuses, logs)
}
