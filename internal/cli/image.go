package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spoteci/spoteci/internal/images"
	"github.com/spoteci/spoteci/internal/registry"
	eciapi "github.com/spoteci/spoteci/pkg/eci"
)

func newImageCommand(streams Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build the instances' container images; load image archives into the local registry",
	}
	cmd.AddCommand(newImageBuildCommand(streams), newImageLoadCommand(streams))
	return cmd
}

func newImageBuildCommand(streams Streams) *cobra.Command {
	var cacheDir string
	var opts images.Options
	var names []string
	for _, img := range images.Builtin {
		names = append(names, img.Name)
	}
	cmd := &cobra.Command{
		Use:   "build [IMAGE...]",
		Short: "Build the images the examples use (" + strings.Join(names, ", ") + ") from Debian packages",
		Long: `Build the images the examples use from Debian packages, without a container
registry: perl (debootstrap of Debian 12 minbase with perl and libmath-bigint-perl;
needs root) and busybox (Debian's busybox-static). Each is written as an OCI archive
into --cache-dir and rebuilt only when missing or when its recipe changes.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Progress = streams.ErrOut
			start := time.Now()
			results, err := images.Build(cmd.Context(), cacheDir, opts, args...)
			for _, r := range results {
				how := "cached"
				if r.Built {
					how = "built in " + r.Duration.Round(100*time.Millisecond).String()
				}
				fmt.Fprintf(streams.Out, "%-8s %s  %s  %.1f MiB  %s\n", r.Image.Name, r.Path, r.Digest, float64(r.Size)/(1<<20), how)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.ErrOut, "images ready in %s\n", time.Since(start).Round(100*time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cacheDir, "cache-dir", images.DefaultCacheDir, "folder of the image archives (and of the downloaded .deb files)")
	f.StringVar(&opts.Mirror, "mirror", "", "Debian mirror (default: the one the apt sources of this machine use for "+images.DebianSuite+")")
	f.BoolVar(&opts.Force, "force", false, "rebuild even the images whose archive is current")
	return cmd
}

func newImageLoadCommand(streams Streams) *cobra.Command {
	var addr, stateDir, token string
	var refs []string
	cmd := &cobra.Command{
		Use:   "load FILE.tar",
		Short: "Push a docker save tarball or an OCI archive to the local registry",
		Long: `Push the images of a docker save tarball or an OCI archive (a tar of an OCI image
layout) to the local registry, under the names in the archive or those given with
--name. The registry host of a name is dropped and Docker Hub short names expanded:
--name perl pushes library/perl:latest, which a pod's "image: perl" pulls.
Pushes need the service's admin token (the Token of <state-dir>/eci.json, or
--token): the registry refuses writes without it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if addr == "" {
				info, err := registry.ReadInfo(stateDir)
				if err != nil {
					return err
				}
				addr = info.Address
			}
			if token == "" {
				info, err := eciapi.ReadServerInfo(stateDir)
				if err != nil {
					return fmt.Errorf("the registry's push credential: %w (or pass --token)", err)
				}
				token = info.Token
			}
			pushed, err := registry.Load(cmd.Context(), addr, registry.Authenticator(token), args[0], refs...)
			if err != nil {
				return err
			}
			for _, p := range pushed {
				fmt.Fprintln(streams.Out, p)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "registry", "", "registry address, 127.0.0.1:PORT (default: from <state-dir>/"+registry.InfoFile+")")
	f.StringVar(&stateDir, "state-dir", defaultStateDir(), "state folder of spoteci up, to read the registry's address and push credential from")
	f.StringVar(&token, "token", "", "the registry's push credential, the service's admin token (default: the one in <state-dir>/eci.json)")
	f.StringArrayVar(&refs, "name", nil, "name to push the archive's image under, instead of its own (repeatable)")
	return cmd
}
