package lab

import (
	"context"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
)

// RemoveOldImages deletes the images of earlier builds: every image labelled
// proxylab.component that is not the :latest of its component. Each build
// of changed sources leaves one behind, since images are content-addressed.
// It returns how many it removed.
func (e *Engine) RemoveOldImages(ctx context.Context) (int, error) {
	list, err := e.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "proxylab.component"))})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, img := range list {
		if slices.ContainsFunc(img.RepoTags, func(t string) bool { return strings.HasSuffix(t, ":latest") }) {
			continue
		}
		// PruneChildren drops the untagged layers; Force because the image
		// carries two tags at most and both are ours.
		if _, err := e.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
