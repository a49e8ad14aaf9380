//go:build cairnd

package components

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/cli"
	logsapi "k8s.io/component-base/logs/api/v1"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/cairn-os/cairn/cluster/supervise"
)

// runControlPlane runs the apiserver, and once it is ready, the
// controller-manager and the scheduler beside it (see runShared).
func runControlPlane(args []string) int {
	return runShared(args, "kube-apiserver", apiserver.NewAPIServerCommand, func(parts map[string][]string) {
		go func() {
			// The controller-manager gives up if the apiserver is not ready
			// (its RBAC roles not yet made); the server waits the same way.
			kubeconfig, _ := flagValue(parts["kube-controller-manager"], "kubeconfig")
			waitReady(kubeconfig)
			go func() { stopOn("kube-controller-manager", runControllerManager(parts["kube-controller-manager"])) }()
			stopOn("kube-scheduler", runScheduler(parts["kube-scheduler"]))
		}()
	})
}

// runShared runs several components in one process; args are
// supervise.Together's. The owner's command runs in the foreground and
// owns the process's signal handling (upstream allows one per process);
// its exit ends the process. start runs first: it starts the others, each
// ending the process with stopOn if it returns, so that the supervisor
// starts them all again, and returns when the owner may start. Logging is
// process-wide: every Kubernetes part gets the owner's logging flags, and
// the same flags applied a second time are not a change.
func runShared(args []string, owner string, newOwner func() *cobra.Command, start func(parts map[string][]string)) int {
	parts := supervise.Parts(args)
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	shareLogging(parts, owner)
	start(parts)
	cmd := newOwner()
	cmd.SetArgs(parts[owner])
	return cli.Run(cmd)
}

func runControllerManager(args []string) error {
	cmd := controllermanager.NewControllerManagerCommand()
	cmd.SetArgs(args)
	return cli.RunNoErrOutput(cmd)
}

// runScheduler is kube-scheduler's command without its signal handler.
func runScheduler(args []string) error {
	opts := scheduleroptions.NewOptions()
	fs := pflag.NewFlagSet("kube-scheduler", pflag.ContinueOnError)
	for _, f := range opts.Flags.FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	ctx := context.Background()
	cc, sched, err := scheduler.Setup(ctx, opts)
	if err != nil {
		return err
	}
	return scheduler.Run(ctx, cc, sched)
}

// loggingFlags are klog's and logsapi's flags: process-wide, so one value
// for all the components of a process.
var loggingFlags = []string{"v", "vmodule", "logging-format", "log-flush-frequency",
	"log-text-split-stream", "log-text-info-buffer-size", "log-json-split-stream", "log-json-info-buffer-size"}

// shareLogging gives every Kubernetes part (one of entries) the logging
// flags of the process's owner that it does not set itself, so that
// `extraArgs: {kube-apiserver: [v=4]}` applies to the whole process rather
// than conflicting with its partners' defaults.
func shareLogging(parts map[string][]string, owner string) {
	for name, args := range parts {
		if _, k8s := entries[name]; name == owner || !k8s { // containerd logs through logrus, without these flags
			continue
		}
		for _, f := range loggingFlags {
			if v, ok := flagValue(parts[owner], f); ok {
				if _, set := flagValue(args, f); !set {
					args = append(args, "--"+f+"="+v)
				}
			}
		}
		parts[name] = args
	}
}

// stopOn ends the process when a component that should run for ever
// returns.
func stopOn(name string, err error) {
	fmt.Fprintf(os.Stderr, "%s stopped (%v); the process exits to be restarted\n", name, err)
	os.Exit(1)
}

// flagValue is the value of the last --name=value in args.
func flagValue(args []string, name string) (value string, ok bool) {
	for _, a := range args {
		if v, found := strings.CutPrefix(a, "--"+name+"="); found {
			value, ok = v, true
		}
	}
	return value, ok
}

// waitReady returns once the apiserver answers /readyz with ok to the
// identity in kubeconfig.
func waitReady(kubeconfig string) {
	for {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err == nil {
			cfg.Timeout = 10 * time.Second
			var c *kubernetes.Clientset
			if c, err = kubernetes.NewForConfig(cfg); err == nil {
				var body []byte
				body, err = c.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(context.Background())
				if err == nil && string(body) == "ok" {
					return
				}
			}
		}
		time.Sleep(2 * time.Second)
	}
}
