package resolver

import (
	"fmt"

	"github.com/ext3replay/ext3replay/pkg/ext3fs"
	"github.com/ext3replay/ext3replay/pkg/ops"
)

// Role is what a file-system block is used for.
type Role uint8

const (
	RoleFree        Role = iota
	RoleSuper            // primary superblock (block 0 or 1)
	RoleSuperBackup      // superblock copy in a backup group
	RoleGDT              // primary group descriptor table
	RoleGDTBackup        // group descriptor table copy
	RoleReservedGDT      // blocks reserved for GDT growth (resize_inode), primary or backup
	RoleBlockBitmap
	RoleInodeBitmap
	RoleInodeTable
	RoleJournal // data block of the journal inode (Logical = journal block number)
	RoleInd
	RoleDInd
	RoleTInd
	RoleExtent  // extent tree node
	RoleDir     // directory data block
	RoleData    // regular file data block
	RoleXattr   // extended-attribute block (may be shared by several inodes; Ino is the first seen)
	RoleSymlink // slow symlink target block
	numRoles
)

func (r Role) String() string {
	if r < numRoles {
		return roleTable[r].name
	}
	return fmt.Sprintf("role%d", uint8(r))
}

// IsMetadata reports roles that are file-system structure rather than file contents.
func (r Role) IsMetadata() bool { return r != RoleFree && r != RoleData && r != RoleJournal }

// stepKind is how Owner.Logical advances from one block of a run to the next.
type stepKind uint8

const (
	stepNone   stepKind = iota // every block of the run has the same Logical (map nodes, bitmaps)
	stepBlock                  // one per block (file blocks, journal blocks, descriptor blocks)
	stepInodes                 // inodes per block (inode tables)
)

// roleInfo is everything the resolver does differently by role, in one table.
type roleInfo struct {
	name string
	kind ops.Kind // reported on I/O
	// file: I/O is attributed to the owning file's path (blocks of a file's data or map).
	file bool
	step stepKind
	// kept: the content is metadata the resolver decodes again, so the model keeps it and a
	// write is diffed against it; written blocks of other roles are not kept.
	kept bool
	// credited: a kept role whose content names other things (directory entries, map pointers),
	// credited when claimed and withdrawn when released; a block of such a role freed in the
	// batch that wrote it keeps that content for its next owner (see ownership.metaWritten).
	credited bool
	// blockMap: for map nodes, the scheme that decodes them (nil for every other role).
	blockMap blockMap
	// mapLevel: for map nodes of an indirect map, how many levels of pointers lie below.
	mapLevel int
}

var roleTable = [numRoles]roleInfo{
	RoleFree:        {name: "free", kind: ops.KindUnowned},
	RoleSuper:       {name: "superblock", kind: ops.KindSuper, kept: true},
	RoleSuperBackup: {name: "superblock backup", kind: ops.KindSuper},
	RoleGDT:         {name: "group descriptors", kind: ops.KindGDT, step: stepBlock, kept: true},
	RoleGDTBackup:   {name: "group descriptors backup", kind: ops.KindGDT, step: stepBlock},
	RoleReservedGDT: {name: "reserved gdt", kind: ops.KindGDT, step: stepBlock},
	RoleBlockBitmap: {name: "block bitmap", kind: ops.KindBitmap},
	RoleInodeBitmap: {name: "inode bitmap", kind: ops.KindBitmap},
	RoleInodeTable:  {name: "inode table", kind: ops.KindInode, step: stepInodes, kept: true},
	RoleJournal:     {name: "journal", kind: ops.KindJournal, step: stepBlock},
	RoleInd:         {name: "indirect", kind: ops.KindIndirect, file: true, kept: true, credited: true, blockMap: indirectMap{}, mapLevel: 1},
	RoleDInd:        {name: "double indirect", kind: ops.KindIndirect, file: true, kept: true, credited: true, blockMap: indirectMap{}, mapLevel: 2},
	RoleTInd:        {name: "triple indirect", kind: ops.KindIndirect, file: true, kept: true, credited: true, blockMap: indirectMap{}, mapLevel: 3},
	RoleExtent:      {name: "extent node", kind: ops.KindExtent, file: true, kept: true, credited: true, blockMap: extentMap{}},
	RoleDir:         {name: "directory", kind: ops.KindDir, file: true, step: stepBlock, kept: true, credited: true},
	RoleData:        {name: "data", kind: ops.KindData, file: true, step: stepBlock},
	RoleXattr:       {name: "xattr", kind: ops.KindInode},
	RoleSymlink:     {name: "symlink", kind: ops.KindData, file: true, step: stepBlock, kept: true},
}

// dataRole is the role of an inode's data blocks.
func dataRole(in *ext3fs.Inode) Role {
	switch in.Type() {
	case ext3fs.TypeDir:
		return RoleDir
	case ext3fs.TypeSymlink:
		return RoleSymlink
	}
	return RoleData
}

// ixRoleFor maps an inode's block to a role.
func ixRoleFor(fs *ext3fs.FS, ino uint32, in *ext3fs.Inode, k ext3fs.BlockKind) Role {
	switch k {
	case ext3fs.BlockInd:
		return RoleInd
	case ext3fs.BlockDInd:
		return RoleDInd
	case ext3fs.BlockTInd:
		return RoleTInd
	case ext3fs.BlockExtent:
		return RoleExtent
	}
	if fs.SB.HasJournal() && ino == fs.SB.JournalInum {
		return RoleJournal
	}
	return dataRole(in)
}
