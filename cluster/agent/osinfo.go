package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-os/cairn/boot"
	"github.com/cairn-os/cairn/internal/nodeapi"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// What every node says about its system, for kubectl get nodes -L.
const (
	OSVersionLabel = "cairn.dev/os-version"
	// OSBuildLabel is the image's build number (its SOURCE_DATE_EPOCH),
	// which updates compare: two builds of one cairn version differ in it.
	OSBuildLabel         = "cairn.dev/os-build"
	LastUpdateAnnotation = "cairn.dev/last-update"
)

// syncOS puts the running version and the last update's result on the
// Node, with the kubelet's credentials (a node may change its own labels
// outside the kubernetes.io namespaces), when they differ from what it says.
func (a *Agent) syncOS(ctx context.Context, n *corev1.Node) {
	version, build, last := osFacts()
	if n.Labels[OSVersionLabel] == version && n.Labels[OSBuildLabel] == build && n.Annotations[LastUpdateAnnotation] == last {
		return
	}
	var note any = last
	if last == "" {
		note = nil // a merge patch's null removes it
	}
	meta := map[string]any{"labels": map[string]string{OSVersionLabel: version, OSBuildLabel: build}, "annotations": map[string]any{LastUpdateAnnotation: note}}
	patch, _ := json.Marshal(map[string]any{"metadata": meta})
	if _, err := a.kubelet.CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		a.Log.Warn("cannot label the node with its system's version", "err", err)
		return
	}
	a.Log.Info("node labelled with its system", "version", version, "build", build, "lastUpdate", last)
}

// osFacts reads the version and build the node runs and its last
// update's result.
func osFacts() (version, build, last string) {
	version, build = "unknown", "unknown"
	if info, err := boot.ReadInfo(); err == nil {
		version, build = LabelValue(info.Version), fmt.Sprint(info.Epoch)
	}
	if r, err := nodeapi.LastResult(boot.UpdateState); err == nil && r != nil {
		last = fmt.Sprintf("%s %s (build %d) in slot %s at %s", r.State, r.Version, r.Build, r.Slot, r.Time.Format(time.RFC3339))
		if r.Reason != "" {
			last += ": " + r.Reason
		}
	}
	return version, build, last
}

// LabelValue makes s a valid label value: at most 63 of [A-Za-z0-9._-],
// starting and ending with a letter or digit.
func LabelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	v := strings.Trim(string(b[:min(len(b), 63)]), "._-")
	if v == "" {
		return "unknown"
	}
	return v
}
