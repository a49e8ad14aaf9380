package pid1

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-os/cairn/boot"
	"golang.org/x/sys/unix"
)

// debugConsole answers a few read-only commands on the serial console, for
// people at the console and for the VM tests. Each answer stands between the
// lines "cairn-debug: begin" and "cairn-debug: end", so a reader can tell it
// from the terminal's echo and from log lines.
func debugConsole(log *slog.Logger, s *stage2) {
	in, err := os.Open("/dev/console")
	if err != nil {
		log.Warn("debug console", "err", err)
		return
	}
	out := console()
	fmt.Fprintln(out, "cairn-debug: commands: cat FILE, ls DIR, mounts, df DIR, ip, date, hostname, ps")
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		fmt.Fprintln(out, "cairn-debug: begin")
		answer(out, s, f)
		fmt.Fprintln(out, "cairn-debug: end")
	}
}

func answer(out io.Writer, s *stage2, f []string) {
	arg := ""
	if len(f) > 1 {
		arg = f[1]
	}
	switch f[0] {
	case "cat":
		data, err := readPublic(arg)
		if err != nil {
			fmt.Fprintln(out, "cairn-debug: error:", err)
			return
		}
		out.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			fmt.Fprintln(out)
		}
	case "ls":
		entries, err := os.ReadDir(arg)
		if err != nil {
			fmt.Fprintln(out, "cairn-debug: error:", err)
			return
		}
		for _, e := range entries {
			info, _ := e.Info()
			fmt.Fprintf(out, "%s %d %s\n", info.Mode(), info.Size(), e.Name())
		}
	case "mounts":
		data, _ := os.ReadFile("/proc/self/mounts")
		out.Write(data)
	case "df":
		var st unix.Statfs_t
		if err := unix.Statfs(arg, &st); err != nil {
			fmt.Fprintln(out, "cairn-debug: error:", err)
			return
		}
		fmt.Fprintf(out, "%s size=%d free=%d\n", arg, int64(st.Blocks)*st.Bsize, int64(st.Bavail)*st.Bsize)
	case "ip":
		ifs, _ := net.Interfaces()
		for _, i := range ifs {
			addrs, _ := i.Addrs()
			var as []string
			for _, a := range addrs {
				as = append(as, a.String())
			}
			fmt.Fprintf(out, "%s %s %s\n", i.Name, i.HardwareAddr, strings.Join(as, " "))
		}
	case "date":
		fmt.Fprintln(out, time.Now().UTC().Format(time.RFC3339), time.Now().Unix())
	case "hostname":
		h, _ := os.Hostname()
		fmt.Fprintln(out, h)
	case "ps":
		ps(out)
	default:
		if !testCommand(out, f) {
			fmt.Fprintln(out, "cairn-debug: error: unknown command", f[0])
		}
	}
}

// ps lists processes: pid, resident and proportional (shared pages split
// among their users) memory in KiB, and the command line's first two words
// (cairnd's components are "cairnd kube-apiserver").
func ps(out io.Writer) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		rollup, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue // kernel threads have no memory of their own
		}
		mem := map[string]string{"Rss:": "0", "Pss:": "0"}
		for _, l := range strings.Split(string(rollup), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				if _, ok := mem[f[0]]; ok {
					mem[f[0]] = f[1]
				}
			}
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		if len(args) > 2 {
			args = args[:2]
		}
		fmt.Fprintf(out, "%d %s %s %s\n", pid, mem["Rss:"], mem["Pss:"], strings.Join(args, " "))
	}
}

// secretPlaces hold keys, tokens and what they protect; the debug console
// does not show what is in them, wherever the path it is given leads.
var secretPlaces = []string{boot.ClusterDir, boot.FleetDir, boot.ConfigPath, boot.ServerDir, boot.AgentDir, "/var/lib/kubelet", runDir}

// runDir holds what init and cairnd make at run time: the card's and the
// effective config (tokens, passphrases), the agent's keys, the slot the
// root file is in.
const runDir = "/run/cairn"

// readPublic reads a regular file for the debug console, refusing devices
// (a raw disk holds the secrets too) and anything in secretPlaces.
func readPublic(name string) ([]byte, error) {
	real, err := filepath.EvalSymlinks(name)
	if err != nil {
		return nil, err
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil, err
	}
	for _, p := range secretPlaces {
		if real == p || strings.HasPrefix(real, p+"/") {
			return nil, fmt.Errorf("%s is in %s, which holds secrets; the debug console does not show it", name, p)
		}
	}
	f, err := os.Open(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file; the debug console shows only those", name)
	}
	return io.ReadAll(io.LimitReader(f, 1<<20))
}
