package server

import (
	"os"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// auditRule is the part of an audit policy rule the test matches on.
type auditRule struct {
	Level     string
	Users     []string
	Verbs     []string
	Resources []struct {
		Group     string
		Resources []string
	}
	NonResourceURLs []string `yaml:"nonResourceURLs"`
}

// levelOf is the level of the first rule that matches a resource request,
// as the apiserver decides it.
func levelOf(rules []auditRule, user, verb, group, resource string) string {
	for _, r := range rules {
		if len(r.NonResourceURLs) > 0 ||
			len(r.Users) > 0 && !slices.Contains(r.Users, user) ||
			len(r.Verbs) > 0 && !slices.Contains(r.Verbs, verb) {
			continue
		}
		matched := len(r.Resources) == 0
		for _, gr := range r.Resources {
			matched = matched || gr.Group == group && slices.Contains(gr.Resources, resource)
		}
		if matched {
			return r.Level
		}
	}
	return "None"
}

// TestAuditPolicyKeepsTokensOut checks that no request that carries a
// secret or a bearer token is logged with its body.
func TestAuditPolicyKeepsTokensOut(t *testing.T) {
	p := Paths{Dir: t.TempDir()}
	if err := writePolicy(p, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	var policy struct{ Rules []auditRule }
	if err := yaml.Unmarshal(must(os.ReadFile(p.auditPolicy())), &policy); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, verb, group, resource, want string
	}{
		{"system:serviceaccount:monitoring:proxy", "create", "authentication.k8s.io", "tokenreviews", "Metadata"},
		{"admin", "create", "", "secrets", "Metadata"},
		{"admin", "create", "", "serviceaccounts/token", "Metadata"},
		{"admin", "update", "", "configmaps", "Metadata"},
		{"admin", "create", "apps", "deployments", "Request"},
		{"admin", "list", "", "pods", "None"},
	} {
		if got := levelOf(policy.Rules, tc.user, tc.verb, tc.group, tc.resource); got != tc.want {
			t.Errorf("%s %s %s/%s: audit level %s, want %s", tc.user, tc.verb, tc.group, tc.resource, got, tc.want)
		}
	}
}
