package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
)

// Journal recovery for the commands that read an image (inspect, blocks): an image whose journal
// needs recovery (a snapshot of a running guest, a disk after a power cut) is shown as the next
// mount, or e2fsck, would see it, unless --no-recovery asks for the raw image.

// addNoRecoveryFlag registers --no-recovery on cmd.
func addNoRecoveryFlag(cmd *cobra.Command, p *bool) {
	cmd.Flags().BoolVar(p, "no-recovery", false, "show the image as it is, without replaying a journal that needs recovery")
}

// openRecoveredFS is openFS over the image after journal recovery (ext3fs.Recover), saying on
// stderr what recovery did; with noRecovery, or when the image needs none, it is openFS.
// part is the partition of a partitioned disk to open (0: the disk must be a bare file system).
func openRecoveredFS(path string, part int, noRecovery bool, stderr io.Writer, who string) (*diskimage.Image, *ext3fs.FS, error) {
	img, err := openImageProgress(path, newProgress(stderr, false, "decompressing "+filepath.Base(path), -1, true))
	if err != nil {
		return nil, nil, &exitError{code: exitUsage, err: err}
	}
	dev, size, name, err := partitionDevice(img, path, part)
	if err == nil {
		var fsys *ext3fs.FS
		if fsys, err = recoveredFS(dev, size, name, noRecovery, stderr, who); err == nil {
			return img, fsys, nil
		}
	}
	if _, ok := asPartitioned(err); !ok {
		img.Close() // a *partitionedDisk keeps it for the caller
	}
	return nil, nil, err
}

// recoveredFS opens the file system on dev (an image, or a partition of one) as openFS does,
// after journal recovery unless noRecovery.
func recoveredFS(dev io.ReaderAt, size int64, name string, noRecovery bool, stderr io.Writer, who string) (*ext3fs.FS, error) {
	fsys, err := openFS(dev, size, name)
	if err != nil || noRecovery || !fsys.SB.NeedsRecovery() {
		if err == nil && fsys.SB.NeedsRecovery() {
			fmt.Fprintf(stderr, "ext3replay %s: %s: needs journal recovery; showing it unrecovered (--no-recovery)\n", who, name)
		}
		return fsys, err
	}
	rc, err := ext3fs.Recover(dev)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s: journal recovery: %w (--no-recovery shows the image as it is)", name, err)}
	}
	fsys, err = ext3fs.OpenWith(rc, ext3fs.Options{InlineData: true})
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s after journal recovery: %w", name, err)}
	}
	fmt.Fprintf(stderr, "ext3replay %s: %s: %s (--no-recovery for the image as it is)\n", who, name, rc.Summary())
	return fsys, nil
}
