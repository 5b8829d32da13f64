package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/ops/render"
	"github.com/ext3replay/ext3replay/pkg/resolver"
)

type blocksOptions struct {
	partition  int
	sectors    bool
	format     string
	noRecovery bool
	inodes     []uint
}

func newBlocksCmd() *cobra.Command {
	var o blocksOptions
	cmd := &cobra.Command{
		Use:   "blocks IMAGE (BLOCK... | PATH... | --inode N)",
		Short: "Tell what each block (or 512-byte sector) of an image is and which file owns it, or which blocks a file owns",
		Long: `blocks answers, for each block number, what the block is used for and by
whom: superblock or backup, group descriptors, reserved GDT, block or inode
bitmap, inode table (with the inodes it holds), journal, indirect block of an
inode, directory or data block N of an inode, extent node, xattr block, or
free; and the full path(s) of the owning inode. It is debugfs icheck and
ncheck in one step, including the metadata blocks icheck reports as "not
found". A free block the block bitmap still marks in use is reported as such.

Arguments are block numbers, or ranges A-B; with --sectors they are 512-byte
sector numbers (as in a block-I/O log) and each is mapped to its block.

On a partitioned disk a number names a block of one partition's file system:
P:BLOCK (or P:A-B), or --partition P for every number; with --sectors and no
partition the numbers are the disk's sectors, located in the partition table
first (the table's own sectors, swap and unpartitioned space are named).

The other way round, as debugfs blocks and stat answer it: for each absolute
PATH (not following symlinks), or inode given with --inode, blocks lists the
blocks the file owns in logical order, runs of consecutive blocks on one
line: data (directory, symlink or journal blocks for those inodes), and the
indirect and extent-tree blocks that map them.`,
		Example: `  ext3replay blocks disk.img 0 1 2 1234
  ext3replay blocks disk.img 1000-1010
  ext3replay blocks --sectors disk.img 2048 8392
  ext3replay blocks disk.img.zst 300 --format json
  ext3replay blocks gpt-disk.qcow2 2:1234 1:0-3
  ext3replay blocks --sectors gpt-disk.img 0 2048 100400
  ext3replay blocks disk.img /home/user/notes.txt /etc
  ext3replay blocks disk.img --inode 12 --inode 8`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && cmd.Flags().Changed("inode") {
				return nil
			}
			return cobra.MinimumNArgs(2)(cmd, args)
		},
		RunE: checkedOutput(func(cmd *cobra.Command, args []string, out io.Writer) error {
			return runBlocks(cmd, args, out, &o)
		}),
	}
	cmd.Flags().BoolVar(&o.sectors, "sectors", false, "arguments are 512-byte sector numbers")
	cmd.Flags().IntVar(&o.partition, "partition", 0, "partitioned disk: the partition whose blocks the numbers are")
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text|json")
	cmd.Flags().UintSliceVar(&o.inodes, "inode", nil, "list the blocks this inode owns (repeatable)")
	addNoRecoveryFlag(cmd, &o.noRecovery)
	return cmd
}

// blockInfo is one answer of the blocks command (JSON field names are stable).
type blockInfo struct {
	Partition int      `json:"partition,omitempty"` // partitioned disk: the partition the block is in
	Sector    *uint64  `json:"sector,omitempty"`
	Block     uint64   `json:"block"`
	Role      string   `json:"role"`
	Group     *uint32  `json:"group,omitempty"`
	Ino       uint32   `json:"ino,omitempty"`
	Logical   *uint64  `json:"logical,omitempty"`
	Inodes    string   `json:"inodes,omitempty"` // inode-table blocks: "first-last"
	Paths     []string `json:"paths,omitempty"`
	Note      string   `json:"note,omitempty"`
}

// parseNumbers expands "N" and "A-B" arguments.
func parseNumbers(args []string) ([]uint64, error) {
	var out []uint64
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		l, err := strconv.ParseUint(lo, 0, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number or range A-B", a)
		}
		h := l
		if isRange {
			if h, err = strconv.ParseUint(hi, 0, 64); err != nil {
				return nil, fmt.Errorf("%q is not a number or range A-B", a)
			}
			if h < l {
				return nil, fmt.Errorf("range %q ends before it starts (want A-B with A <= B)", a)
			}
			if h-l >= 1<<20 {
				return nil, fmt.Errorf("range %q spans more than 1048576 numbers", a)
			}
		}
		for n := l; n <= h; n++ {
			out = append(out, n)
		}
	}
	return out, nil
}

func runBlocks(cmd *cobra.Command, args []string, out io.Writer, o *blocksOptions) error {
	o.format = humanFormat(o.format, "text")
	if o.format != "text" && o.format != "json" {
		return &exitError{code: exitUsage, err: fmt.Errorf("--format %q: want text or json", o.format)}
	}
	var paths, numbers []string
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "/") {
			paths = append(paths, a)
		} else {
			numbers = append(numbers, a)
		}
	}
	if len(numbers) > 0 && (len(paths) > 0 || len(o.inodes) > 0) {
		return &exitError{code: exitUsage, err: fmt.Errorf("blocks: give block numbers, or files (PATH, --inode), not both")}
	}
	if len(numbers) == 0 && o.sectors {
		return &exitError{code: exitUsage, err: fmt.Errorf("blocks: --sectors applies to block numbers, not to files")}
	}
	if len(numbers) == 0 {
		return runFileBlocks(cmd, args[0], paths, out, o)
	}
	targets, err := parseBlockArgs(numbers, o.partition)
	if err != nil {
		return &exitError{code: exitUsage, err: err}
	}
	var infos []blockInfo
	img, fsys, err := openRecoveredFS(args[0], o.partition, o.noRecovery, cmd.ErrOrStderr(), "blocks")
	if pd, ok := asPartitioned(err); ok {
		defer pd.img.Close()
		if infos, err = blocksPartitioned(pd, targets, o, cmd.ErrOrStderr()); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else {
		defer img.Close()
		d, err := newDescriber(fsys, args[0], cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		for _, t := range targets {
			if t.part != 0 && o.partition == 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("%d:%d: %s has no partition table (a bare file system): give the block alone", t.part, t.n, args[0])}
			}
			bi := blockInfo{Partition: o.partition}
			if o.sectors {
				s := t.n
				bi.Sector = &s
				bi.Block = t.n * 512 / uint64(fsys.BlockSize())
			} else {
				bi.Block = t.n
			}
			d.describe(&bi)
			infos = append(infos, bi)
		}
	}
	w := out
	if o.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	header := []string{"BLOCK", "ROLE", "INODE", "LOGICAL", "PATH"}
	right := []bool{true, false, true, true, false}
	parts := false
	for _, bi := range infos {
		parts = parts || bi.Partition != 0
	}
	if o.sectors {
		header = append([]string{"SECTOR"}, header...)
		right = append([]bool{true}, right...)
	}
	if parts {
		header = append([]string{"PART"}, header...)
		right = append([]bool{true}, right...)
	}
	rows := make([][]string, 0, len(infos))
	for _, bi := range infos {
		var row []string
		if parts {
			part := "-"
			if bi.Partition != 0 {
				part = strconv.Itoa(bi.Partition)
			}
			row = append(row, part)
		}
		if bi.Sector != nil {
			row = append(row, strconv.FormatUint(*bi.Sector, 10))
		}
		ino, logical := "-", "-"
		if bi.Ino != 0 {
			ino = strconv.FormatUint(uint64(bi.Ino), 10)
		}
		if bi.Logical != nil {
			logical = strconv.FormatUint(*bi.Logical, 10)
		}
		role := bi.Role
		if bi.Group != nil {
			role += fmt.Sprintf(" (group %d)", *bi.Group)
		}
		var what []string
		if bi.Inodes != "" {
			what = append(what, "inodes "+bi.Inodes)
		}
		for _, p := range bi.Paths {
			what = append(what, ops.QuotePath(p)) // guest names: no raw escapes on the terminal
		}
		if bi.Note != "" {
			what = append(what, "("+bi.Note+")")
		}
		rows = append(rows, append(row, strconv.FormatUint(bi.Block, 10), role, ino, logical, strings.Join(what, " ")))
	}
	return render.Table(w, header, rows, right)
}

// describer answers for the blocks of one file system.
type describer struct {
	fsys    *ext3fs.FS
	idx     *resolver.Index
	pathsOf func(uint32) []string
	bitmaps map[uint32][]byte
}

func newDescriber(fsys *ext3fs.FS, name string, stderr io.Writer) (*describer, error) {
	idx, names, problems, err := resolver.BuildTolerant(fsys)
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", name, err)}
	}
	for _, p := range problems {
		// As analyze reports them (anomalies): what can be decoded is answered.
		fmt.Fprintf(stderr, "ext3replay blocks: %s: %s (left out)\n", name, ops.SafeText(p.Error()))
	}
	pathsOf := names.Paths
	if fsys.SB.FeatureIncompat&ext3fs.IncompatInlineData != 0 {
		// The replay model's names come from directory blocks; inline directories have none.
		if pathsOf, err = walkPaths(fsys); err != nil {
			return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", name, err)}
		}
	}
	return &describer{fsys: fsys, idx: idx, pathsOf: pathsOf, bitmaps: map[uint32][]byte{}}, nil
}

func (d *describer) describe(bi *blockInfo) { describeBlock(d.fsys, d.idx, d.pathsOf, d.bitmaps, bi) }

func describeBlock(fsys *ext3fs.FS, idx *resolver.Index, pathsOf func(uint32) []string, bitmaps map[uint32][]byte, bi *blockInfo) {
	sb := fsys.SB
	b := bi.Block
	if b >= sb.BlocksCount {
		bi.Role, bi.Note = "outside", fmt.Sprintf("beyond the last block %d", sb.BlocksCount-1)
		return
	}
	if b < uint64(sb.FirstDataBlock) {
		bi.Role, bi.Note = "boot", "boot block, not part of any group"
		return
	}
	o := idx.Lookup(b)
	bi.Role = o.Role.String()
	switch o.Role {
	case resolver.RoleFree:
		g := uint32((b - uint64(sb.FirstDataBlock)) / uint64(sb.BlocksPerGroup))
		bi.Group = &g
		if blockBitmapSet(fsys, bitmaps, g, b) {
			bi.Note = "marked in use in the block bitmap, but no inode or structure owns it"
		}
		return
	case resolver.RoleSuper, resolver.RoleSuperBackup, resolver.RoleGDT, resolver.RoleGDTBackup,
		resolver.RoleBlockBitmap, resolver.RoleInodeBitmap:
		g := o.Group
		bi.Group = &g
		return
	case resolver.RoleReservedGDT:
		g := o.Group
		bi.Group = &g
	case resolver.RoleInodeTable:
		g := o.Group
		bi.Group = &g
		if first, n, ok := fsys.InodeTableBlock(b); ok {
			bi.Inodes = fmt.Sprintf("%d-%d", first, first+uint32(n)-1)
		}
		return
	}
	bi.Ino = o.Ino
	if o.Role != resolver.RoleXattr && o.Role != resolver.RoleReservedGDT {
		l := o.Logical
		bi.Logical = &l
	}
	if o.Ino != 0 {
		bi.Paths = pathsOf(o.Ino)
		if len(bi.Paths) == 0 {
			switch o.Ino {
			case fsys.SB.JournalInum:
				bi.Note = "journal inode"
			case ext3fs.ResizeIno:
				bi.Note = "resize inode"
			default:
				bi.Note = "inode has no name"
			}
		}
	}
}

// blockBitmapSet reads (once per group) the block bitmap and tests block b.
func blockBitmapSet(fsys *ext3fs.FS, cache map[uint32][]byte, g uint32, b uint64) bool {
	bm, ok := cache[g]
	if !ok {
		bm = make([]byte, fsys.BlockSize())
		if err := fsys.ReadBlock(fsys.Groups[g].BlockBitmap, bm); err != nil {
			bm = nil
		}
		cache[g] = bm
	}
	i := b - fsys.SB.GroupFirstBlock(g)
	return bm != nil && bm[i/8]&(1<<(i%8)) != 0
}

// walkPaths lists every inode's names by walking the tree with ext3fs (which reads inline
// directories), sorted like resolver.Names.Paths.
func walkPaths(fsys *ext3fs.FS) (func(uint32) []string, error) {
	m := map[uint32][]string{}
	err := fsys.Walk(func(p string, ino uint32, _ *ext3fs.Inode) error {
		m[ino] = append(m[ino], p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, ps := range m {
		sort.Strings(ps)
	}
	return func(ino uint32) []string { return m[ino] }, nil
}

// runFileBlocks is blocks the other way round: the blocks each file (PATH, or --inode) owns.
func runFileBlocks(cmd *cobra.Command, image string, paths []string, out io.Writer, o *blocksOptions) error {
	img, fsys, err := openRecoveredFS(image, o.partition, o.noRecovery, cmd.ErrOrStderr(), "blocks")
	if pd, ok := asPartitioned(err); ok {
		pd.img.Close()
		return &exitError{code: exitUsage, err: fmt.Errorf("%s is a partitioned disk: give --partition N for the file system the files are in", image)}
	}
	if err != nil {
		return err
	}
	defer img.Close()
	var files []*fileBlocks
	for _, p := range paths {
		ino, err := lookupPath(fsys, p)
		if err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", image, err)}
		}
		fb, err := blocksOf(fsys, p, ino)
		if err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s: %s: %w", image, ops.QuotePath(p), err)}
		}
		files = append(files, fb)
	}
	for _, n := range o.inodes {
		if uint64(n) > uint64(^uint32(0)) {
			return &exitError{code: exitUsage, err: fmt.Errorf("--inode %d: out of range", n)}
		}
		fb, err := blocksOf(fsys, "", uint32(n))
		if err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", image, err)}
		}
		files = append(files, fb)
	}
	return writeFileBlocks(out, o.format, files)
}
