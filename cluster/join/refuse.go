package join

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-os/cairn/cluster/identity"
)

// Refusals tells whether a cluster administrator refused a node name. The
// endpoint turns away every join under a refused name (403), so once its
// certificates expire (identity.NodeLifetime) the node is out of the
// cluster, whoever holds its card.
type Refusals interface {
	Refused(ctx context.Context, node string) (bool, error)
}

// ErrNodeRefused means the join's node name is refused.
var ErrNodeRefused = errors.New("node name refused")

// RefusedLabel marks a refusal Secret; its value is the node name.
const RefusedLabel = "cairn.dev/refused-node"

// RefusalSecret is the Secret in kube-system whose being there refuses node.
func RefusalSecret(node string) string { return node + ".node-refused.cairn" }

// PasswordSecret is the Secret in kube-system that keeps node's password hash.
func PasswordSecret(node string) string { return node + ".node-password.cairn" }

// refused refuses a join under a refused name, with the way back.
func (s *Server) refused(ctx context.Context, node string) error {
	if s.Refusals == nil {
		return nil
	}
	refused, err := s.Refusals.Refused(ctx, node)
	if err != nil || !refused {
		return err
	}
	return fmt.Errorf("%w: the cluster's administrators refused %s (Secret kube-system/%s); to let a machine join under this name again, retire the node and lift the refusal: kubectl delete node %s && kubectl -n kube-system delete secret %s %s",
		ErrNodeRefused, node, RefusalSecret(node), node, PasswordSecret(node), RefusalSecret(node))
}

// ErrNodeName means a name is not a node name.
var ErrNodeName = errors.New("bad node name")

func checkNodeName(node string) error {
	if !nodeRE.MatchString(node) {
		return fmt.Errorf("%w: %q is not a node name (1 to 63 of a-z, 0-9 and '-')", ErrNodeName, node)
	}
	return nil
}

// Refuse refuses node in the cluster of b whose API is at apiURL, as its
// administrator, with a client certificate that lasts an hour: it makes
// the node's refusal Secret. It says whether the node was refused before.
func Refuse(ctx context.Context, b *identity.Bundle, apiURL, node string, now time.Time) (already bool, err error) {
	if err := checkNodeName(node); err != nil {
		return false, err
	}
	tc, err := b.AdminTLS(now, time.Hour)
	if err != nil {
		return false, err
	}
	body, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Secret", "immutable": true,
		"metadata": map[string]any{"name": RefusalSecret(node), "namespace": "kube-system",
			"labels": map[string]string{RefusedLabel: node}},
		"stringData": map[string]string{"refused": now.UTC().Format(time.RFC3339)},
	})
	url := strings.TrimSuffix(apiURL, "/") + "/api/v1/namespaces/kube-system/secrets"
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("refusing node %s: %w; check that --server is the cluster's API URL (https://HOST:6443)", node, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return false, nil
	case http.StatusConflict:
		return true, nil
	}
	var status struct{ Message string }
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &status) != nil || status.Message == "" {
		status.Message = strings.TrimSpace(string(data))
	}
	return false, fmt.Errorf("refusing node %s: the API answered %s: %s", node, resp.Status, status.Message)
}
