package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/ops/render"
)

type inspectOptions struct {
	partition  int
	format     string
	groups     bool
	noRecovery bool
	keepGoing  bool
}

func newInspectCmd() *cobra.Command {
	var o inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Show an image's geometry, features and every file with its inode, size and blocks",
		Long: `inspect reads an ext2/3/4 image (raw, zstd-compressed, or qcow2 and the
other formats qemu-img reads) and prints a summary of its geometry and
features, then every file reachable from the root, depth first: inode, type,
permissions, link count, size, the number of blocks it owns
(data plus indirect or extent blocks, as debugfs stat counts them) and its path.
A file with several hard links appears once per name. Symlinks show their
target, device nodes their major,minor.

On a partitioned disk (MBR or GPT) inspect lists the partitions and what each
holds; --partition N shows the file system of partition N.

A directory block, entry or file that cannot be decoded stops inspect (exit
status 2, the error names it and its byte offset). With --keep-going it is
named on stderr and left out, everything else is listed, and the exit status
is 4 (a partial result).`,
		Example: `  ext3replay inspect disk.img
  ext3replay inspect fixtures/real/basic-ext3-4k/image.raw.zst
  ext3replay inspect disk.img --groups
  ext3replay inspect damaged.img --keep-going
  ext3replay inspect disk.img --format json | jq '.files[] | select(.size > 1048576)'
  ext3replay inspect vm.qcow2 --partition 2`,
		Args: cobra.ExactArgs(1),
		RunE: checkedOutput(func(cmd *cobra.Command, args []string, out io.Writer) error {
			return runInspect(cmd, args, out, &o)
		}),
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text|json")
	cmd.Flags().IntVar(&o.partition, "partition", 0, "partitioned disk: the partition whose file system to show (without it, the partition table is listed)")
	cmd.Flags().BoolVar(&o.groups, "groups", false, "also list every block group's layout (like dumpe2fs)")
	cmd.Flags().BoolVar(&o.keepGoing, "keep-going", false, "list what can be decoded around a bad directory block, entry or file (named on stderr; exit status 4)")
	addNoRecoveryFlag(cmd, &o.noRecovery)
	return cmd
}

// inspectSummary is the geometry part of inspect's output (JSON field names are stable).
type inspectSummary struct {
	Image           string   `json:"image"`
	ImageBytes      int64    `json:"image_bytes"`
	Compressed      bool     `json:"compressed"`
	ImageFormat     string   `json:"image_format,omitempty"` // qcow2, vmdk, ...: converted by qemu-img
	Partition       int      `json:"partition,omitempty"`    // partitioned disk: the partition shown
	Kind            string   `json:"kind"`                   // ext2, ext3, ext4
	Revision        uint32   `json:"revision"`
	BlockSize       int      `json:"block_size"`
	Blocks          uint64   `json:"blocks"`
	FreeBlocks      uint64   `json:"free_blocks"`
	FirstDataBlock  uint32   `json:"first_data_block"`
	Inodes          uint32   `json:"inodes"`
	FreeInodes      uint32   `json:"free_inodes"`
	InodeSize       int      `json:"inode_size"`
	FirstIno        uint32   `json:"first_ino"`
	Groups          uint32   `json:"groups"`
	BlocksPerGroup  uint32   `json:"blocks_per_group"`
	InodesPerGroup  uint32   `json:"inodes_per_group"`
	DescSize        int      `json:"desc_size"`
	GDTBlocks       uint64   `json:"gdt_blocks"`
	ReservedGDT     uint16   `json:"reserved_gdt_blocks"`
	InodeTableBlks  uint64   `json:"inode_table_blocks_per_group"`
	BackupGroups    []uint32 `json:"backup_groups"`
	Features        []string `json:"features"`
	UUID            string   `json:"uuid"`
	VolumeName      string   `json:"volume_name"`
	LastMounted     string   `json:"last_mounted"`
	State           string   `json:"state"`
	JournalInode    uint32   `json:"journal_inode,omitempty"`
	JournalBlocks   uint64   `json:"journal_blocks,omitempty"`
	HashVersion     uint8    `json:"default_hash_version"`
	MkfsTime        string   `json:"mkfs_time,omitempty"`
	WriteTime       string   `json:"write_time,omitempty"`
	NeedsRecovery   bool     `json:"needs_recovery"`
	DirIndexEnabled bool     `json:"dir_index"`
}

// inspectGroup is one block group's layout (--groups).
type inspectGroup struct {
	Group       uint32 `json:"group"`
	First       uint64 `json:"first_block"`
	Last        uint64 `json:"last_block"`
	Super       string `json:"superblock,omitempty"` // "primary" or "backup"
	GDT         string `json:"gdt,omitempty"`        // block range of the GDT copy
	ReservedGDT string `json:"reserved_gdt,omitempty"`
	BlockBitmap uint64 `json:"block_bitmap"`
	InodeBitmap uint64 `json:"inode_bitmap"`
	InodeTable  string `json:"inode_table"`
	FreeBlocks  uint32 `json:"free_blocks"`
	FreeInodes  uint32 `json:"free_inodes"`
	UsedDirs    uint32 `json:"used_dirs"`
	Flags       string `json:"flags,omitempty"`
}

type inspectFile struct {
	Path   string `json:"path"`
	Ino    uint32 `json:"ino"`
	Type   string `json:"type"`
	Mode   string `json:"mode"`
	Links  uint16 `json:"links"`
	Size   uint64 `json:"size"`
	Blocks uint64 `json:"blocks"`
	Htree  bool   `json:"htree,omitempty"`
	Target string `json:"target,omitempty"`
	Device string `json:"device,omitempty"`
}

func runInspect(cmd *cobra.Command, args []string, out io.Writer, o *inspectOptions) error {
	o.format = humanFormat(o.format, "text")
	if o.format != "text" && o.format != "json" {
		return &exitError{code: exitUsage, err: fmt.Errorf("--format %q: want text or json", o.format)}
	}
	img, fsys, err := openRecoveredFS(args[0], o.partition, o.noRecovery, cmd.ErrOrStderr(), "inspect")
	if pd, ok := asPartitioned(err); ok {
		defer pd.img.Close()
		return listPartitions(out, pd, o.format)
	}
	if err != nil {
		return err
	}
	defer img.Close()
	sum := summarize(img, fsys)
	sum.Partition = o.partition
	// What cannot be decoded (a directory block, an entry naming an inode out of range, a file's
	// block map) stops the listing, or with --keep-going is named on stderr and left out.
	var problems int
	problem := func(path string, err error) error {
		if !o.keepGoing {
			return fmt.Errorf("%s: %w (--keep-going lists the rest)", ops.QuotePath(path), err)
		}
		problems++
		fmt.Fprintf(cmd.ErrOrStderr(), "ext3replay inspect: %s: %s: %s (left out)\n", args[0], ops.QuotePath(path), ops.SafeText(err.Error()))
		return nil
	}
	prog := newProgress(cmd.ErrOrStderr(), false, "inspecting", int64(fsys.SB.InodesCount)-int64(fsys.SB.FreeInodesCount), false)
	listing, err := listInspectFiles(fsys, o.keepGoing, prog)
	prog.Done()
	if err != nil {
		return err
	}
	for _, p := range listing.problems {
		if err := problem(p.path, p.err); err != nil {
			return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", args[0], err)}
		}
	}
	if listing.stop != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", args[0], listing.stop)}
	}
	files := listing.files
	var groups []inspectGroup
	if o.groups {
		groups = groupLayout(fsys)
	}
	w := out
	if o.format == "json" {
		// "groups" is the group count, or with --groups the per-group array: one key cannot be
		// both, and an outer array field hid the count even without --groups.
		var doc, head any
		if o.groups {
			type withGroups struct {
				inspectSummary
				Groups []inspectGroup `json:"groups"`
				Files  []inspectFile  `json:"files"`
			}
			doc, head = withGroups{sum, groups, files}, withGroups{sum, groups, nil}
		} else {
			type plain struct {
				inspectSummary
				Files []inspectFile `json:"files"`
			}
			doc, head = plain{sum, files}, plain{sum, nil}
		}
		err := writeInspectJSON(w, head, files)
		if err == errNotLast {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			err = enc.Encode(doc)
		}
		if err != nil {
			return err
		}
		return leftOut(args[0], problems)
	}
	writeSummary(w, sum)
	fmt.Fprintln(w)
	if len(groups) > 0 {
		rows := make([][]string, 0, len(groups))
		for _, g := range groups {
			rows = append(rows, []string{itoaU(uint64(g.Group)), fmt.Sprintf("%d-%d", g.First, g.Last), dash(g.Super), dash(g.GDT),
				dash(g.ReservedGDT), itoaU(g.BlockBitmap), itoaU(g.InodeBitmap), g.InodeTable, itoaU(uint64(g.FreeBlocks)),
				itoaU(uint64(g.FreeInodes)), itoaU(uint64(g.UsedDirs)), dash(g.Flags)})
		}
		if err := render.Table(w, []string{"GROUP", "BLOCKS", "SUPER", "GDT", "RESERVED GDT", "BLOCK BITMAP", "INODE BITMAP", "INODE TABLE", "FREE BLOCKS", "FREE INODES", "DIRS", "FLAGS"},
			rows, []bool{true, false, false, false, false, true, true, false, true, true, true, false}); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	fill := func(i int, cells []string) {
		f := &files[i]
		name := ops.QuotePath(f.Path) // guest names are arbitrary bytes: no escapes reach the terminal
		if f.Target != "" {
			name += " -> " + ops.QuotePath(f.Target)
		}
		if f.Device != "" {
			name += " [" + f.Device + "]"
		}
		typ := f.Type
		if f.Htree {
			typ += "(htree)"
		}
		cells[0], cells[1], cells[2], cells[3], cells[4], cells[5], cells[6] =
			itoaU(uint64(f.Ino)), typ, f.Mode, itoaU(uint64(f.Links)), itoaU(f.Size), itoaU(f.Blocks), name
	}
	if err := render.TableRows(w, []string{"INODE", "TYPE", "MODE", "LINKS", "SIZE", "BLOCKS", "PATH"},
		[]bool{true, false, false, true, true, true, false}, len(files), fill); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d names\n", len(files))
	return leftOut(args[0], problems)
}

// leftOut is inspect --keep-going's status: a partial listing is exit status 4, as a damaged
// log's partial result is.
func leftOut(image string, problems int) error {
	if problems == 0 {
		return nil
	}
	return &exitError{code: exitDamaged, err: fmt.Errorf("%s: %d directory blocks, entries or files could not be decoded and were left out (named above)", image, problems)}
}

func itoaU(n uint64) string { return strconv.FormatUint(n, 10) }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func blockRange(first, n uint64) string {
	switch n {
	case 0:
		return ""
	case 1:
		return fmt.Sprint(first)
	}
	return fmt.Sprintf("%d-%d", first, first+n-1)
}

// groupLayout describes every group from the superblock and the descriptors, the same way the
// block index lays down its per-group metadata.
func groupLayout(fsys *ext3fs.FS) []inspectGroup {
	sb := fsys.SB
	per := uint32(fsys.BlockSize() / sb.DescSize())
	var out []inspectGroup
	for g := uint32(0); g < sb.GroupCount(); g++ {
		first := sb.GroupFirstBlock(g)
		d := fsys.Groups[g]
		ig := inspectGroup{Group: g, First: first, Last: first + sb.GroupBlocks(g) - 1,
			BlockBitmap: d.BlockBitmap, InodeBitmap: d.InodeBitmap, InodeTable: blockRange(d.InodeTable, sb.InodeTableBlocks()),
			FreeBlocks: d.FreeBlocks, FreeInodes: d.FreeInodes, UsedDirs: d.UsedDirs}
		if sb.GroupHasSuper(g) {
			ig.Super = "backup"
			if g == 0 {
				ig.Super = "primary"
			}
			old := sb.GDTBlocks()
			if sb.HasMetaBG() {
				old = uint64(sb.FirstMetaBG)
			}
			ig.GDT = blockRange(first+1, old)
			ig.ReservedGDT = blockRange(first+1+old, uint64(sb.ReservedGDTBlocks))
		}
		if sb.HasMetaBG() && g/per >= sb.FirstMetaBG {
			if i := g % per; i == 0 || i == 1 || i == per-1 {
				b := first
				if sb.GroupHasSuper(g) {
					b++
				}
				ig.GDT = blockRange(b, 1) + " (meta_bg)"
			}
		}
		var fl []string
		for _, f := range []struct {
			bit  uint16
			name string
		}{{ext3fs.BGInodeUninit, "INODE_UNINIT"}, {ext3fs.BGBlockUninit, "BLOCK_UNINIT"}, {ext3fs.BGItableZeroed, "ITABLE_ZEROED"}} {
			if d.Flags&f.bit != 0 {
				fl = append(fl, f.name)
			}
		}
		ig.Flags = strings.Join(fl, ",")
		out = append(out, ig)
	}
	return out
}

// openFS opens an image (raw or .zst) and its file system; errors are usage errors (exit 2).
func openFS(dev io.ReaderAt, size int64, name string) (*ext3fs.FS, error) {
	// inspect and blocks only read: inline_data is decoded (analyze's replay model refuses it).
	fsys, err := ext3fs.OpenWith(dev, ext3fs.Options{InlineData: true})
	if err != nil {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", name, err)}
	}
	// A cut image would otherwise fail somewhere in the walk with a bare EOF, or not at all.
	if need := fsys.SB.BlocksCount * uint64(fsys.BlockSize()); uint64(size) < need {
		return nil, &exitError{code: exitUsage, err: fmt.Errorf("%s: image is %d bytes, the file system needs %d (%d blocks of %d): truncated?",
			name, size, need, fsys.SB.BlocksCount, fsys.BlockSize())}
	}
	return fsys, nil
}

func fsKind(sb *ext3fs.Superblock) string {
	switch {
	case sb.HasExtents() || sb.Is64Bit() || sb.FeatureIncompat&ext3fs.IncompatFlexBG != 0:
		return "ext4"
	case sb.HasJournal():
		return "ext3"
	}
	return "ext2"
}

func unixTime(t uint32) string {
	if t == 0 {
		return ""
	}
	return time.Unix(int64(t), 0).UTC().Format(time.RFC3339)
}

func summarize(img *diskimage.Image, fsys *ext3fs.FS) inspectSummary {
	sb := fsys.SB
	s := inspectSummary{
		Image: img.Path(), ImageBytes: img.Size(), Compressed: img.Compressed, ImageFormat: img.Format, Kind: fsKind(sb),
		Revision: sb.RevLevel, BlockSize: sb.BlockSize(), Blocks: sb.BlocksCount, FreeBlocks: sb.FreeBlocksCount,
		FirstDataBlock: sb.FirstDataBlock, Inodes: sb.InodesCount, FreeInodes: sb.FreeInodesCount,
		InodeSize: sb.InodeSize(), FirstIno: sb.FirstIno, Groups: sb.GroupCount(), BlocksPerGroup: sb.BlocksPerGroup,
		InodesPerGroup: sb.InodesPerGroup, DescSize: sb.DescSize(), GDTBlocks: sb.GDTBlocks(),
		ReservedGDT: sb.ReservedGDTBlocks, InodeTableBlks: sb.InodeTableBlocks(), Features: sb.Features(),
		UUID: uuidString(sb.UUID), VolumeName: sb.VolumeName, LastMounted: sb.LastMounted,
		HashVersion: sb.DefHashVersion, MkfsTime: unixTime(sb.MkfsTime), WriteTime: unixTime(sb.Wtime),
		NeedsRecovery: sb.NeedsRecovery(), DirIndexEnabled: sb.HasDirIndex(),
	}
	if s.Features == nil {
		s.Features = []string{}
	}
	s.BackupGroups = []uint32{}
	for g := uint32(1); g < sb.GroupCount(); g++ {
		if sb.GroupHasSuper(g) {
			s.BackupGroups = append(s.BackupGroups, g)
		}
	}
	switch {
	case sb.State&2 != 0:
		s.State = "errors"
	case sb.State&1 != 0:
		s.State = "clean"
	default:
		s.State = "not clean"
	}
	if sb.HasJournal() && sb.JournalInum != 0 {
		s.JournalInode = sb.JournalInum
		if in, err := fsys.ReadInode(sb.JournalInum); err == nil {
			s.JournalBlocks = in.Size / uint64(sb.BlockSize())
		}
	}
	return s
}

func uuidString(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeSummary(w io.Writer, s inspectSummary) {
	comp := ""
	if s.Compressed {
		comp = ", zstd-compressed"
	}
	if s.ImageFormat != "" {
		comp = ", " + s.ImageFormat + " read through qemu-img"
	}
	fmt.Fprintf(w, "Image:        %s (%d bytes%s)\n", s.Image, s.ImageBytes, comp)
	if s.Partition != 0 {
		fmt.Fprintf(w, "Partition:    %d\n", s.Partition)
	}
	fmt.Fprintf(w, "File system:  %s, revision %d, state %s, UUID %s", s.Kind, s.Revision, s.State, s.UUID)
	if s.VolumeName != "" {
		fmt.Fprintf(w, ", label %q", s.VolumeName)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Blocks:       %d of %d bytes (%d free), first data block %d\n", s.Blocks, s.BlockSize, s.FreeBlocks, s.FirstDataBlock)
	fmt.Fprintf(w, "Inodes:       %d of %d bytes (%d free), first non-reserved %d\n", s.Inodes, s.InodeSize, s.FreeInodes, s.FirstIno)
	fmt.Fprintf(w, "Groups:       %d x %d blocks, %d inodes each (inode table %d blocks)\n", s.Groups, s.BlocksPerGroup, s.InodesPerGroup, s.InodeTableBlks)
	backups := "none"
	if len(s.BackupGroups) > 0 {
		backups = strings.Trim(fmt.Sprint(s.BackupGroups), "[]")
	}
	fmt.Fprintf(w, "Descriptors:  %d bytes, %d GDT blocks, %d reserved GDT blocks; backups in groups %s\n", s.DescSize, s.GDTBlocks, s.ReservedGDT, backups)
	fmt.Fprintf(w, "Features:     %s\n", strings.Join(s.Features, " "))
	if s.JournalInode != 0 {
		fmt.Fprintf(w, "Journal:      inode %d, %d blocks", s.JournalInode, s.JournalBlocks)
		if s.NeedsRecovery {
			fmt.Fprint(w, ", needs recovery")
		}
		fmt.Fprintln(w)
	}
	if s.MkfsTime != "" {
		fmt.Fprintf(w, "Created:      %s, last written %s\n", s.MkfsTime, s.WriteTime)
	}
}
