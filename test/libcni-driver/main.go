// cnidriver: a cnitool-compatible test driver built against Debian's libcni (1.1.2).
//
//	cnidriver add|check|del NETNAME NETNS_PATH
//	cnidriver gc|status     NETNAME [NETNS_PATH]
//
// Environment (same names as cnitool where cnitool has them):
//
//	NETCONFPATH        dir with *.conf/*.conflist/*.json (default /etc/cni/net.d)
//	CNI_PATH           plugin search path (colon separated)
//	CNI_ARGS           "K=V;K2=V2" -> RuntimeConf.Args
//	CAP_ARGS           JSON object -> RuntimeConf.CapabilityArgs
//	CNI_IFNAME         default eth0
//	CNI_CONTAINERID    default "cnitool-" + hex(sha512(netns path)[:10]), as cnitool
//	CNI_CACHE_DIR      libcni result cache dir (default /var/lib/cni, as libcni)
//	VALID_ATTACHMENTS  gc only: JSON array of {"containerID","ifname"} (default [])
//
// libcni 1.1.2 has no GC/STATUS API, so those two follow libcni 1.2's
// GCNetworkList / GetStatusNetworkList using the public invoke package:
//   - gc: DEL every cached attachment of this network that is not in
//     VALID_ATTACHMENTS (only when CNI_CACHE_DIR is set explicitly, so a test
//     can never DEL the host's real attachments), then, if the list's
//     cniVersion >= 1.1.0, run GC on each plugin with
//     "cni.dev/valid-attachments" injected into its config;
//   - status: if cniVersion >= 1.1.0, run STATUS on each plugin in order.
//
// add prints the result JSON on stdout. Any failure exits 1; when the failure
// is (or wraps) a CNI types.Error, stderr holds exactly its JSON
// ({"code","msg","details"}) so tests can assert the code; otherwise stderr
// holds the plain error text.
package main

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

const usage = "usage: cnidriver add|check|del NETNAME NETNS_PATH | cnidriver gc|status NETNAME [NETNS_PATH]"

type attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fail(err)
	}
}

func fail(err error) {
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		out, mErr := json.Marshal(cniErr)
		if mErr == nil {
			fmt.Fprintln(os.Stderr, string(out))
			os.Exit(1)
		}
	}
	fmt.Fprintln(os.Stderr, err.Error())
	os.Exit(1)
}

func run(argv []string) error {
	if len(argv) < 2 {
		return errors.New(usage)
	}
	cmd, netName := argv[0], argv[1]
	needsNetns := cmd == "add" || cmd == "check" || cmd == "del"
	if needsNetns && len(argv) < 3 {
		return errors.New(usage)
	}

	confDir := envOr("NETCONFPATH", "/etc/cni/net.d")
	list, err := libcni.LoadConfList(confDir, netName)
	if err != nil {
		return err
	}

	cacheDir := os.Getenv("CNI_CACHE_DIR")
	cninet := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), cacheDir, nil)

	rt, err := runtimeConf(argv)
	if err != nil {
		return err
	}
	ctx := context.Background()

	switch cmd {
	case "add":
		result, err := cninet.AddNetworkList(ctx, list, rt)
		if err != nil {
			return err
		}
		if err := result.Print(); err != nil {
			return err
		}
		fmt.Println()
		return nil
	case "check":
		return cninet.CheckNetworkList(ctx, list, rt)
	case "del":
		return cninet.DelNetworkList(ctx, list, rt)
	case "gc":
		return gc(ctx, cninet, list, cacheDir)
	case "status":
		return status(ctx, cninet, list)
	}
	return fmt.Errorf("unknown command %q; %s", cmd, usage)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// runtimeConf builds the RuntimeConf the way cnitool does.
func runtimeConf(argv []string) (*libcni.RuntimeConf, error) {
	rt := &libcni.RuntimeConf{IfName: envOr("CNI_IFNAME", "eth0")}
	if len(argv) >= 3 {
		netns, err := filepath.Abs(argv[2])
		if err != nil {
			return nil, err
		}
		rt.NetNS = netns
		sum := sha512.Sum512([]byte(netns))
		rt.ContainerID = fmt.Sprintf("cnitool-%x", sum[:10])
	}
	if id := os.Getenv("CNI_CONTAINERID"); id != "" {
		rt.ContainerID = id
	}
	if s := os.Getenv("CNI_ARGS"); s != "" {
		args, err := parseArgs(s)
		if err != nil {
			return nil, err
		}
		rt.Args = args
	}
	if s := os.Getenv("CAP_ARGS"); s != "" {
		if err := json.Unmarshal([]byte(s), &rt.CapabilityArgs); err != nil {
			return nil, fmt.Errorf("CAP_ARGS: %w", err)
		}
	}
	return rt, nil
}

func parseArgs(s string) ([][2]string, error) {
	var out [][2]string
	for _, pair := range strings.Split(s, ";") {
		kv := strings.SplitN(pair, "=", 2)
		if len(kv) != 2 || kv[0] == "" || kv[1] == "" {
			return nil, fmt.Errorf("invalid CNI_ARGS pair %q", pair)
		}
		out = append(out, [2]string{kv[0], kv[1]})
	}
	return out, nil
}

func supports11(list *libcni.NetworkConfigList) (bool, error) {
	return version.GreaterThanOrEqualTo(list.CNIVersion, "1.1.0")
}

// pluginConf is libcni's buildOneConfig minus prevResult/runtimeConfig:
// every plugin gets the list's name and cniVersion, plus extra keys.
func pluginConf(list *libcni.NetworkConfigList, plugin *libcni.NetworkConfig, extra map[string]interface{}) (*libcni.NetworkConfig, error) {
	inject := map[string]interface{}{"name": list.Name, "cniVersion": list.CNIVersion}
	for k, v := range extra {
		inject[k] = v
	}
	return libcni.InjectConf(plugin, inject)
}

// execEach runs one command on every plugin of the list, in order, with the
// empty runtime args libcni 1.2 uses for GC/STATUS (only CNI_PATH is set).
func execEach(ctx context.Context, cninet *libcni.CNIConfig, list *libcni.NetworkConfigList, command string, extra map[string]interface{}) error {
	var errs []error
	for _, plugin := range list.Plugins {
		conf, err := pluginConf(list, plugin, extra)
		if err != nil {
			return err
		}
		pluginPath, err := invoke.FindInPath(plugin.Network.Type, cninet.Path)
		if err != nil {
			return err
		}
		args := &invoke.Args{Command: command, Path: strings.Join(cninet.Path, string(os.PathListSeparator))}
		if err := invoke.ExecPluginWithoutResult(ctx, pluginPath, conf.Bytes, args, nil); err != nil {
			if command == "STATUS" {
				return err // libcni stops at the first plugin that is not ready
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func status(ctx context.Context, cninet *libcni.CNIConfig, list *libcni.NetworkConfigList) error {
	ok, err := supports11(list)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "cnidriver: status skipped: cniVersion %q < 1.1.0 (as libcni)\n", list.CNIVersion)
		return nil
	}
	return execEach(ctx, cninet, list, "STATUS", nil)
}

func gc(ctx context.Context, cninet *libcni.CNIConfig, list *libcni.NetworkConfigList, cacheDir string) error {
	valid := []attachment{}
	if s := os.Getenv("VALID_ATTACHMENTS"); s != "" {
		if err := json.Unmarshal([]byte(s), &valid); err != nil {
			return fmt.Errorf("VALID_ATTACHMENTS: %w", err)
		}
	}
	var errs []error
	if cacheDir != "" {
		if err := delStale(ctx, cninet, list, cacheDir, valid); err != nil {
			errs = append(errs, err)
		}
	}
	ok, err := supports11(list)
	if err != nil {
		return err
	}
	if ok {
		if err := execEach(ctx, cninet, list, "GC", map[string]interface{}{"cni.dev/valid-attachments": valid}); err != nil {
			errs = append(errs, err)
		}
	} else {
		fmt.Fprintf(os.Stderr, "cnidriver: plugin GC skipped: cniVersion %q < 1.1.0 (as libcni)\n", list.CNIVersion)
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// cachedAttachment is the part of libcni's cachedInfo (results/<net>-<id>-<if>) we need.
type cachedAttachment struct {
	Kind           string                 `json:"kind"`
	ContainerID    string                 `json:"containerId"`
	IfName         string                 `json:"ifName"`
	NetworkName    string                 `json:"networkName"`
	CniArgs        [][2]string            `json:"cniArgs,omitempty"`
	CapabilityArgs map[string]interface{} `json:"capabilityArgs,omitempty"`
}

// delStale DELs cached attachments of this network that are not valid (libcni 1.2 GC step 1).
// libcni 1.1.2's cache does not record the netns, so these DELs run with CNI_NETNS="".
func delStale(ctx context.Context, cninet *libcni.CNIConfig, list *libcni.NetworkConfigList, cacheDir string, valid []attachment) error {
	keep := map[attachment]bool{}
	for _, a := range valid {
		keep[a] = true
	}
	files, err := filepath.Glob(filepath.Join(cacheDir, "results", "*"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var errs []error
	for _, f := range files {
		data, err := ioutil.ReadFile(f)
		if err != nil {
			continue
		}
		var c cachedAttachment
		if json.Unmarshal(data, &c) != nil || c.Kind != libcni.CNICacheV1 || c.NetworkName != list.Name {
			continue
		}
		if keep[attachment{ContainerID: c.ContainerID, IfName: c.IfName}] {
			continue
		}
		rt := &libcni.RuntimeConf{ContainerID: c.ContainerID, IfName: c.IfName, Args: c.CniArgs, CapabilityArgs: c.CapabilityArgs}
		if err := cninet.DelNetworkList(ctx, list, rt); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}
