package server

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
)

func (p Paths) encryptionConfig() string {
	return filepath.Join(p.Dir, "cred", "encryption-config.yaml")
}
func (p Paths) admissionConfig() string { return filepath.Join(p.Dir, "etc", "admission.yaml") }
func (p Paths) auditPolicy() string     { return filepath.Join(p.Dir, "etc", "audit-policy.yaml") }

// LogDir holds the components' logs and the audit log.
const LogDir = "/var/log/kubernetes"

// AuditLog is where kube-apiserver writes its audit log (rotated by size).
const AuditLog = LogDir + "/audit.log"

// writePolicy writes the config that encrypts Secrets at rest (secretbox
// with the cluster's key; identity last, so objects written before stay
// readable), the Pod Security admission defaults (enforce baseline) and the
// audit policy.
func writePolicy(p Paths, encryptionKey []byte) error {
	w := writer{}
	w.file(p.encryptionConfig(), []byte(fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - secretbox:
          keys:
            - name: cairn-1
              secret: %s
      - identity: {}
`, base64.StdEncoding.EncodeToString(encryptionKey))))
	w.file(p.admissionConfig(), []byte(`apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: PodSecurity
    configuration:
      apiVersion: pod-security.admission.config.k8s.io/v1
      kind: PodSecurityConfiguration
      defaults:
        enforce: baseline
        enforce-version: latest
        audit: restricted
        audit-version: latest
        warn: restricted
        warn-version: latest
      exemptions:
        namespaces: [kube-system]
`))
	w.file(p.auditPolicy(), []byte(`apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # Secrets, tokens and reviews of tokens are logged without their bodies:
  # a TokenReview's request carries the bearer token it asks about.
  - level: Metadata
    resources:
      - group: ""
        resources: [secrets, configmaps, serviceaccounts/token]
      - group: authentication.k8s.io
        resources: [tokenreviews]
  - level: None
    verbs: [get, list, watch]
  - level: None
    users: [system:kube-proxy, system:kube-scheduler, system:kube-controller-manager]
  - level: None
    nonResourceURLs: [/healthz*, /readyz*, /livez*, /version]
  - level: Request
`))
	return w.err
}
