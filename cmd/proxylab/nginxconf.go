package main

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/proxylab/proxylab/lab"
)

// newNginxConfig prints the nginx baseline's configuration for other
// addresses than the lab's fixed ones, so that scripts running nginx as a
// host process (scripts/bench-proxies.sh) measure exactly the configuration
// compare measures in its container.
func newNginxConfig() *cobra.Command {
	var (
		listen, upstream, tempDir string
		s                         lab.NginxSettings
	)
	cmd := &cobra.Command{
		Use:    "nginx-config",
		Short:  "Print the nginx baseline's configuration for the given addresses",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conf, err := nginxHostConfig(s, listen, upstream, tempDir)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), conf)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", lab.Nginx.Addr(), "address nginx listens on (IP:port on 127.0.0.0/8)")
	f.StringVar(&upstream, "upstream", lab.Upstream.Addr(), "the origin's address (IP:port on 127.0.0.0/8)")
	f.IntVar(&s.Workers, "workers", 1, "worker processes")
	f.IntVar(&s.Connections, "connections", 64, "client connections the configuration is sized for")
	f.StringVar(&tempDir, "temp-dir", "/tmp", "folder for the pid file and nginx's temporary files (absolute)")
	return cmd
}

// nginxHostConfig checks the settings and renders the configuration with
// every file nginx writes moved from the container's /tmp to tempDir, so
// that runs on one host do not share a pid file.
func nginxHostConfig(s lab.NginxSettings, listen, upstream, tempDir string) (string, error) {
	for name, addr := range map[string]string{"--listen": listen, "--upstream": upstream} {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil || !ap.Addr().Is4() || !ap.Addr().IsLoopback() || ap.Port() == 0 {
			return "", fmt.Errorf("%s %q: want IP:port on 127.0.0.0/8 with a port other than 0", name, addr)
		}
	}
	if s.Workers < 1 || s.Connections < 1 {
		return "", fmt.Errorf("--workers and --connections must be at least 1, got %d and %d", s.Workers, s.Connections)
	}
	if !filepath.IsAbs(tempDir) || strings.ContainsAny(tempDir, " \t\n;{}\"'") {
		return "", fmt.Errorf("--temp-dir %q: want an absolute path without spaces, quotes, braces or semicolons", tempDir)
	}
	conf := lab.NginxConfig(s, listen, upstream)
	return strings.ReplaceAll(conf, " /tmp/", " "+filepath.Clean(tempDir)+"/"), nil
}
