package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ext3replay/ext3replay/internal/diskimage"
	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
	"github.com/ext3replay/ext3replay/pkg/partition"
)

// Partitioned disks in inspect and blocks: the table is listed, a file system is chosen with
// --partition N (or N:BLOCK), and --sectors numbers are the whole disk's.

// partitionedDisk is the error of opening a partitioned disk's file system without saying which
// partition: inspect lists the table instead, blocks routes each number. It owns img.
type partitionedDisk struct {
	img  *diskimage.Image
	tab  *partition.Table
	path string
}

func (e *partitionedDisk) Error() string {
	return fmt.Sprintf("%s is a %s-partitioned disk: name a partition with --partition N (inspect %s lists them)", e.path, e.tab.Scheme, e.path)
}

// partitionDevice returns what holds the file system of image img: the image itself for a bare
// file system (part must be 0), else partition part. A partitioned disk with part 0 is a
// *partitionedDisk error (img not closed: it is the error's).
func partitionDevice(img *diskimage.Image, path string, part int) (io.ReaderAt, int64, string, error) {
	tab, err := partition.Read(img, img.Size())
	if err != nil {
		return nil, 0, "", &exitError{code: exitUsage, err: fmt.Errorf("%s: %w", path, err)}
	}
	if tab.Scheme == partition.None {
		if part != 0 {
			return nil, 0, "", &exitError{code: exitUsage, err: fmt.Errorf("--partition %d: %s has no partition table (a bare file system)", part, path)}
		}
		return img, img.Size(), path, nil
	}
	if part == 0 {
		return nil, 0, "", &partitionedDisk{img: img, tab: tab, path: path}
	}
	p, ok := tab.Partition(part)
	if !ok {
		return nil, 0, "", &exitError{code: exitUsage, err: fmt.Errorf("--partition %d: %s has no partition %d (%s)", part, path, part, partitionNumbers(tab))}
	}
	return io.NewSectionReader(img, p.Start, p.Size), p.Size, fmt.Sprintf("%s partition %d", path, part), nil
}

func partitionNumbers(tab *partition.Table) string {
	var ns []string
	for _, p := range tab.Partitions {
		ns = append(ns, strconv.Itoa(p.Number))
	}
	if len(ns) == 0 {
		return "it has none"
	}
	return "it has " + strings.Join(ns, ", ")
}

// partitionInfo is one partition as inspect lists it (JSON field names are stable).
type partitionInfo struct {
	Number      int    `json:"number"`
	StartSector int64  `json:"start_sector"` // 512-byte sectors, as a block-I/O log counts them
	Sectors     int64  `json:"sectors"`
	Type        string `json:"type"` // GPT type GUID or MBR type byte
	Kind        string `json:"kind"` // linux, swap, efi, ...
	Content     string `json:"content"`
	Name        string `json:"name,omitempty"`
	UUID        string `json:"uuid,omitempty"`
	Bootable    bool   `json:"bootable,omitempty"`
}

// partitionTableInfo is inspect's output for a partitioned disk without --partition.
type partitionTableInfo struct {
	Image      string          `json:"image"`
	ImageBytes int64           `json:"image_bytes"`
	Scheme     string          `json:"scheme"`
	DiskID     string          `json:"disk_id"`
	BackupUsed bool            `json:"backup_used,omitempty"` // GPT: the primary was damaged
	Partitions []partitionInfo `json:"partitions"`
	Extended   *partitionInfo  `json:"extended,omitempty"` // MBR: the container of the logical partitions
}

// content says what a partition holds by looking at it: ext2/3/4, swap, or "-".
func content(img io.ReaderAt, p partition.Partition) string {
	sec := io.NewSectionReader(img, p.Start, p.Size)
	if fsys, err := ext3fs.OpenWith(sec, ext3fs.Options{InlineData: true}); err == nil {
		return fsKind(fsys.SB)
	}
	var b [10]byte
	if p.Size >= 4096 {
		if _, err := img.ReadAt(b[:], p.Start+4096-10); err == nil && (string(b[:]) == "SWAPSPACE2" || string(b[:]) == "SWAP-SPACE") {
			return "swap"
		}
	}
	return "-"
}

// listPartitions writes the table of a partitioned disk (inspect without --partition).
func listPartitions(w io.Writer, pd *partitionedDisk, format string) error {
	t := partitionTableInfo{Image: pd.path, ImageBytes: pd.img.Size(), Scheme: string(pd.tab.Scheme), DiskID: pd.tab.DiskID,
		BackupUsed: pd.tab.BackupUsed, Partitions: []partitionInfo{}}
	for _, p := range pd.tab.Partitions {
		t.Partitions = append(t.Partitions, partitionInfo{Number: p.Number, StartSector: p.Start / 512, Sectors: p.Size / 512,
			Type: p.Type, Kind: string(p.Kind), Content: content(pd.img, p), Name: p.Name, UUID: p.UUID, Bootable: p.Bootable})
	}
	if x := pd.tab.Extended; x != nil {
		t.Extended = &partitionInfo{Number: x.Number, StartSector: x.Start / 512, Sectors: x.Size / 512, Type: x.Type, Kind: string(x.Kind), Content: "-"}
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(t)
	}
	fmt.Fprintf(w, "Image:        %s (%d bytes)\n", t.Image, t.ImageBytes)
	fmt.Fprintf(w, "Partitions:   %s, disk %s, %d partitions\n", t.Scheme, t.DiskID, len(t.Partitions))
	if pd.tab.BackupUsed {
		fmt.Fprintf(w, "              the primary GPT is damaged (%v): the backup was read\n", pd.tab.PrimaryErr)
	} else if pd.tab.BackupErr != nil {
		fmt.Fprintf(w, "              the backup GPT is damaged: %v\n", pd.tab.BackupErr)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tSTART\tEND\tSIZE\tTYPE\tCONTENT\tNAME")
	for _, p := range t.Partitions {
		name := p.Name
		if p.Bootable {
			name = strings.TrimSpace(name + " (bootable)")
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\n", p.Number, p.StartSector, p.StartSector+p.Sectors-1,
			ops.HumanBytes(p.Sectors*512), p.Kind, p.Content, ops.SafeText(name))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if x := t.Extended; x != nil {
		fmt.Fprintf(w, "\nExtended partition %d (sectors %d-%d) holds the logical partitions and their EBRs.\n", x.Number, x.StartSector, x.StartSector+x.Sectors-1)
	}
	fmt.Fprintf(w, "\nSTART and END are 512-byte sectors of the disk; inspect --partition N shows a file system.\n")
	return nil
}

// blockArg is one number of the blocks command and the partition it is in (0: the disk's own
// numbering, or a bare file system).
type blockArg struct {
	part int
	n    uint64
}

// parseBlockArgs expands "N", "A-B", "P:N" and "P:A-B"; def is --partition.
func parseBlockArgs(args []string, def int) ([]blockArg, error) {
	var out []blockArg
	for _, a := range args {
		part, num := def, a
		if p, rest, ok := strings.Cut(a, ":"); ok {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%q: want PARTITION:BLOCK with a partition number from 1", a)
			}
			part, num = n, rest
		}
		ns, err := parseNumbers([]string{num})
		if err != nil {
			return nil, err
		}
		for _, n := range ns {
			out = append(out, blockArg{part, n})
		}
	}
	return out, nil
}

// blocksPartitioned answers the blocks command on a partitioned disk: each number in its
// partition's file system; with --sectors and no partition, disk sectors are located in the
// table first (the table's own sectors, swap and unpartitioned space are named as such).
func blocksPartitioned(pd *partitionedDisk, targets []blockArg, o *blocksOptions, stderr io.Writer) ([]blockInfo, error) {
	type fsState struct {
		d   *describer
		err error
	}
	fss := map[int]*fsState{}
	open := func(n int) (*describer, error) {
		if s := fss[n]; s != nil {
			return s.d, s.err
		}
		s := &fsState{}
		fss[n] = s
		p, ok := pd.tab.Partition(n)
		if !ok {
			s.err = &exitError{code: exitUsage, err: fmt.Errorf("%s has no partition %d (%s)", pd.path, n, partitionNumbers(pd.tab))}
			return nil, s.err
		}
		name := fmt.Sprintf("%s partition %d", pd.path, n)
		fsys, err := recoveredFS(io.NewSectionReader(pd.img, p.Start, p.Size), p.Size, name, o.noRecovery, stderr, "blocks")
		if err != nil {
			s.err = err
			return nil, err
		}
		s.d, s.err = newDescriber(fsys, name, stderr)
		return s.d, s.err
	}
	var infos []blockInfo
	for _, t := range targets {
		var bi blockInfo
		if t.part == 0 {
			if !o.sectors {
				return nil, &exitError{code: exitUsage, err: fmt.Errorf("block %d: %s is %s-partitioned: write PARTITION:BLOCK (e.g. 1:%d), give --partition N, or --sectors for disk sectors",
					t.n, pd.path, pd.tab.Scheme, t.n)}
			}
			s := t.n
			bi.Sector = &s
			off := int64(t.n) * 512
			p, ok, area := pd.tab.Locate(off)
			c := ""
			if ok {
				c = content(pd.img, p)
			}
			switch {
			case ok && c != "-" && c != "swap":
				d, err := open(p.Number)
				if err != nil {
					return nil, err
				}
				bi.Partition = p.Number
				bi.Block = uint64(off-p.Start) / uint64(d.fsys.BlockSize())
				d.describe(&bi)
			case ok:
				bi.Partition = p.Number
				bi.Role = string(ops.KindPartition)
				if c == "swap" || p.Kind == partition.KindSwap {
					bi.Role = string(ops.KindSwap)
				}
				bi.Block = uint64(off - p.Start)
				bi.Note = fmt.Sprintf("byte %d of partition %d (%s)", off-p.Start, p.Number, p.Kind)
			case area != nil:
				bi.Role, bi.Block, bi.Note = string(ops.KindPartitionTable), t.n, area.What
			case off >= pd.img.Size():
				bi.Role, bi.Block, bi.Note = "outside", t.n, fmt.Sprintf("beyond the disk's last sector %d", pd.img.Size()/512-1)
			default:
				bi.Role, bi.Block = string(ops.KindUnpartitioned), t.n
			}
			infos = append(infos, bi)
			continue
		}
		d, err := open(t.part)
		if err != nil {
			return nil, err
		}
		bi.Partition = t.part
		if o.sectors {
			// A sector of the partition, counted from its start.
			s := t.n
			bi.Sector = &s
			bi.Block = t.n * 512 / uint64(d.fsys.BlockSize())
		} else {
			bi.Block = t.n
		}
		d.describe(&bi)
		infos = append(infos, bi)
	}
	return infos, nil
}

// asPartitioned reports err as the partitioned disk it is, if it is one.
func asPartitioned(err error) (*partitionedDisk, bool) {
	var pd *partitionedDisk
	ok := errors.As(err, &pd)
	return pd, ok
}

// partitionOf returns partition n of img's table (partitionDevice has checked it exists).
func partitionOf(img io.ReaderAt, n int) (partition.Partition, error) {
	size := int64(0)
	if s, ok := img.(interface{ Size() int64 }); ok {
		size = s.Size()
	}
	tab, err := partition.Read(img, size)
	if err != nil {
		return partition.Partition{}, err
	}
	p, ok := tab.Partition(n)
	if !ok {
		return p, fmt.Errorf("no partition %d", n)
	}
	return p, nil
}
