package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/cairn-os/cairn/cluster/manifest"
	"github.com/cairn-os/cairn/internal/retry"
)

// The server's record of the objects it applied from manifests, so that it
// can delete those whose manifest an update removed.
const (
	inventoryNS   = "kube-system"
	inventoryName = "cairn-manifests"
	inventoryKey  = "objects"
	// ManagedBy labels every object applied from a manifest.
	ManagedBy = "app.kubernetes.io/managed-by"
	// fieldManager owns the fields cairn applies.
	fieldManager = "cairn"
)

// SyncInterval is how often the manifests are applied again.
const SyncInterval = time.Minute

// manifests applies the baked manifests with server-side apply (field
// manager "cairn", taking over conflicting fields) and prunes what an
// earlier image applied and this one no longer has.
type manifests struct {
	dir    string
	dyn    dynamic.Interface
	cs     kubernetes.Interface
	mapper meta.ResettableRESTMapper
	log    *slog.Logger
	failed map[string]string // object → last error logged
	done   bool              // a full sync has been logged
}

func newManifests(cfg *rest.Config, dir string, log *slog.Logger) (*manifests, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	return &manifests{dir: dir, dyn: dyn, cs: cs, mapper: mapper, log: log, failed: map[string]string{}}, nil
}

// run syncs now and every SyncInterval until ctx ends; a sync with
// failures is tried again sooner.
func (m *manifests) run(ctx context.Context) {
	b := retry.Backoff{Min: 5 * time.Second, Max: SyncInterval}
	for ctx.Err() == nil {
		wait := SyncInterval
		if m.sync(ctx) {
			b.Reset()
		} else {
			wait = b.Next()
		}
		retry.Sleep(ctx, wait)
	}
}

// sync applies every object and prunes; it reports whether all went well.
func (m *manifests) sync(ctx context.Context) bool {
	objs, err := m.read()
	if err != nil {
		m.log.Error("reading the manifests", "dir", m.dir, "err", err)
		return false
	}
	ok := true
	var want []string
	for _, o := range objs {
		id, err := m.apply(ctx, o)
		if id != "" {
			want = append(want, id)
		}
		ok = m.report(o.ID()+" ("+o.file+")", err) && ok
	}
	old, err := m.inventory(ctx)
	if err != nil {
		m.log.Warn("reading the record of applied manifests", "err", err)
		return false
	}
	keep := slices.Clone(want)
	for _, id := range old {
		if slices.Contains(want, id) {
			continue
		}
		if !ok {
			// An object that failed to apply has no entry in want, so
			// pruning now could delete it: wait for a clean round.
			keep = append(keep, id)
			continue
		}
		err := m.delete(ctx, id)
		if err == nil {
			m.log.Info("manifest object deleted: no manifest has it any more", "object", id)
		} else {
			keep = append(keep, id) // try again next time
		}
		ok = m.report(id, err) && ok
	}
	slices.Sort(keep)
	keep = slices.Compact(keep)
	if !slices.Equal(keep, old) {
		if err := m.record(ctx, keep); err != nil {
			m.log.Warn("recording the applied manifests", "err", err)
			return false
		}
	}
	if ok && !m.done && len(objs) > 0 {
		m.log.Info("manifests applied", "objects", len(objs), "dir", m.dir)
		m.done = true
	}
	return ok
}

// report logs a failure once per distinct error, and a recovery.
func (m *manifests) report(what string, err error) bool {
	if err == nil {
		if _, was := m.failed[what]; was {
			m.log.Info("manifest object applied after all", "object", what)
			delete(m.failed, what)
		}
		return true
	}
	if m.failed[what] != err.Error() {
		m.log.Warn("manifest object not applied; retrying", "object", what, "err", err)
		m.failed[what] = err.Error()
	}
	m.done = false
	return false
}

type fileObject struct {
	manifest.Object
	file string
}

func (m *manifests) read() ([]fileObject, error) {
	files, err := filepath.Glob(filepath.Join(m.dir, "*"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var out []fileObject
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		objs, err := manifest.Parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		for _, o := range objs {
			out = append(out, fileObject{o, filepath.Base(f)})
		}
	}
	return out, nil
}

// resource finds the API resource of a kind, asking discovery again when
// the kind is new (such as a custom resource whose definition was just applied).
func (m *manifests) resource(apiVersion, kind, namespace string) (dynamic.ResourceInterface, string, error) {
	gvk := schema.FromAPIVersionAndKind(apiVersion, kind)
	mapping, err := m.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		m.mapper.Reset()
		mapping, err = m.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	if err != nil {
		return nil, "", err
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		return m.dyn.Resource(mapping.Resource), "", nil
	}
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	return m.dyn.Resource(mapping.Resource).Namespace(namespace), namespace, nil
}

// apply applies one object and returns its record entry (with the
// namespace it landed in).
func (m *manifests) apply(ctx context.Context, o fileObject) (string, error) {
	res, ns, err := m.resource(o.APIVersion, o.Kind, o.Namespace)
	if err != nil {
		return "", err
	}
	u := &unstructured.Unstructured{Object: o.Doc}
	u.SetNamespace(ns)
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[ManagedBy] = "cairn"
	u.SetLabels(labels)
	o.Namespace = ns
	_, err = res.Apply(ctx, o.Name, u, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	return o.ID(), err
}

// delete deletes an object the record lists, but only while it is still
// one that cairn applied: labelled as managed by cairn, with fields cairn
// applied, and with the UID it had when looked at (a precondition), so
// that an object someone made under that name meanwhile survives. The
// record is a ConfigMap that others may be able to write; it must not buy
// them deletions with the server's rights. Anything else is left alone and
// dropped from the record.
func (m *manifests) delete(ctx context.Context, id string) error {
	f := strings.Fields(id)
	if len(f) != 4 {
		return nil // not ours to understand; drop it from the record
	}
	ns := f[2]
	if ns == "-" {
		ns = ""
	}
	res, _, err := m.resource(f[0], f[1], ns)
	if meta.IsNoMatchError(err) {
		return nil // the kind is gone, and its objects with it
	}
	if err != nil {
		return err
	}
	live, err := res.Get(ctx, f[3], metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if !appliedByCairn(live) {
		m.log.Warn("manifest object left alone: the record lists it, but cairn did not apply it", "object", id)
		return nil
	}
	uid := live.GetUID()
	bg := metav1.DeletePropagationBackground
	err = res.Delete(ctx, f[3], metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &uid}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // gone, or replaced by another object since the look
	}
	return err
}

// appliedByCairn says whether cairn applied u: its label, and fields owned
// by cairn's field manager through server-side apply.
func appliedByCairn(u *unstructured.Unstructured) bool {
	if u.GetLabels()[ManagedBy] != "cairn" {
		return false
	}
	return slices.ContainsFunc(u.GetManagedFields(), func(f metav1.ManagedFieldsEntry) bool {
		return f.Manager == fieldManager && f.Operation == metav1.ManagedFieldsOperationApply
	})
}

func (m *manifests) inventory(ctx context.Context) ([]string, error) {
	cm, err := m.cs.CoreV1().ConfigMaps(inventoryNS).Get(ctx, inventoryName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, l := range strings.Split(cm.Data[inventoryKey], "\n") {
		if l = strings.TrimSpace(l); l != "" {
			ids = append(ids, l)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

func (m *manifests) record(ctx context.Context, ids []string) error {
	cms := m.cs.CoreV1().ConfigMaps(inventoryNS)
	data := map[string]string{inventoryKey: strings.Join(ids, "\n") + "\n"}
	cm, err := cms.Get(ctx, inventoryName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: inventoryName, Namespace: inventoryNS, Labels: map[string]string{ManagedBy: "cairn"}},
			Data:       data,
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cm.Data = data
	_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}
