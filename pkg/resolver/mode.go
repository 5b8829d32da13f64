package resolver

// rules says how the guest orders its metadata writes, and so when a change it wrote is
// certain enough to report.
type rules uint8

const (
	// journaled: metadata reaches its home location only as a checkpoint of a committed jbd2
	// transaction, and each commit is applied whole: changes are decided at the commit.
	journaled rules = iota
	// homeWrites: metadata goes home without the journal (ext2, or an ext3 image written by a
	// driver that ignores its journal): names change block by block and are decided at the next
	// device flush; file I/O gets its path there too.
	homeWrites
)

// batchSource is what the batch being applied to the model came from.
type batchSource uint8

const (
	noBatch         batchSource = iota
	homeBatch                   // writes to home locations (a request's blocks)
	journalBatch                // a committed transaction, or a held write judged later
	fastCommitBatch             // the inodes of an ext4 fast commit (fastcommit.go)
)

// mode is the resolver's state machine for ordering: the rules in force and the batch being
// applied. Its transitions are its methods; nothing else assigns it.
//
//	start:      journaled if the file system has a journal the resolver follows, else homeWrites
//	journaled  --inode-table home write that changes the model-->  homeWrites
//	homeWrites --committed transaction-->                          journaled
type mode struct {
	rules rules
	batch batchSource
}

func startMode(hasJournal bool) mode {
	if hasJournal {
		return mode{rules: journaled}
	}
	return mode{rules: homeWrites}
}

// decidedAtFlush reports the homeWrites rules: namespace changes and the I/O that depends on
// them wait for the next device flush.
func (m mode) decidedAtFlush() bool { return m.rules == homeWrites }

// claimsHeld reports whether a claim made now may still be undone before it is certain: under
// the homeWrites rules, and for any home write batch (a journal-less driver may undo it in the
// same interval; on a journaled guest home writes are checkpoints that change nothing).
func (m mode) claimsHeld() bool { return m.rules == homeWrites || m.batch == homeBatch }

// homeMetadataChanged is the switch to the homeWrites rules: jbd2 writes metadata home only as
// a checkpoint of a committed transaction, already applied, so an inode-table home write that
// changes the model means the guest's driver ignores the journal (an ext2 driver mounting ext3,
// as on BSD or Windows) and orders nothing through it.
func (m *mode) homeMetadataChanged() { m.rules = homeWrites }

// committed is the switch back to the journaled rules: a guest that commits transactions
// orders its metadata through the journal (a journal replayed at mount writes its blocks home
// before the guest commits anything of its own).
func (m *mode) committed() { m.rules = journaled }

// applying marks the batch being applied until done is called.
func (m *mode) applying(src batchSource) (done func()) {
	prev := m.batch
	m.batch = src
	return func() { m.batch = prev }
}
