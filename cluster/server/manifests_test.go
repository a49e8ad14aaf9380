package server

import (
	"context"
	"log/slog"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// staticMapper knows ConfigMaps only; Reset has nothing to forget.
type staticMapper struct{ meta.RESTMapper }

func (staticMapper) Reset() {}

func configMap(name string, labels map[string]string, managers ...metav1.ManagedFieldsEntry) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace("default")
	u.SetName(name)
	u.SetUID(types.UID("uid-" + name))
	u.SetLabels(labels)
	u.SetManagedFields(managers)
	return u
}

// TestPruneDeletesOnlyWhatCairnApplied lists objects in the record as
// someone who can write the ConfigMap might: only the one cairn applied
// itself is deleted.
func TestPruneDeletesOnlyWhatCairnApplied(t *testing.T) {
	ours := map[string]string{ManagedBy: "cairn"}
	applied := metav1.ManagedFieldsEntry{Manager: fieldManager, Operation: metav1.ManagedFieldsOperationApply}
	byHand := metav1.ManagedFieldsEntry{Manager: "kubectl-client-side-apply", Operation: metav1.ManagedFieldsOperationUpdate}
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(),
		configMap("removed-from-manifests", ours, applied),
		configMap("someone-elses", nil, byHand),
		configMap("label-only", ours, byHand),
	)
	gvk := schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(gvk, meta.RESTScopeNamespace)
	m := &manifests{dyn: dyn, mapper: staticMapper{mapper}, log: slog.New(slog.DiscardHandler), failed: map[string]string{}}
	ctx := context.Background()
	for _, name := range []string{"removed-from-manifests", "someone-elses", "label-only", "never-existed"} {
		if err := m.delete(ctx, "v1 ConfigMap default "+name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	for name, want := range map[string]bool{"removed-from-manifests": false, "someone-elses": true, "label-only": true} {
		_, err := dyn.Resource(gvr).Namespace("default").Get(ctx, name, metav1.GetOptions{})
		if exists := err == nil; exists != want {
			t.Errorf("%s exists: %t, want %t (%v)", name, exists, want, err)
		}
	}
}
