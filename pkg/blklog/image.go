package blklog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// RegionSize is how much of the start of an image ImageID.RegionSHA256
// covers: boot block, primary superblock and (for most images) the group
// descriptors. Cheap to check, and it changes with any mkfs.
const RegionSize = 64 << 10

// ErrImageMismatch is wrapped by CheckImage when the image is not the one
// the log was recorded against.
var ErrImageMismatch = errors.New("image does not match the log")

// IdentifyImage computes the identity of the image img of size bytes. With
// full set, it also hashes the whole content (reads all of it).
func IdentifyImage(img io.ReaderAt, size int64, full bool) (ImageID, error) {
	id := ImageID{Known: true, Size: uint64(size)}
	region := min(size, RegionSize)
	b := make([]byte, region)
	if _, err := img.ReadAt(b, 0); err != nil && !(err == io.EOF) {
		return ImageID{}, fmt.Errorf("blklog: reading image region: %w", err)
	}
	id.RegionLen = uint32(region)
	id.RegionSHA256 = sha256.Sum256(b)
	if full {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(img, 0, size)); err != nil {
			return ImageID{}, fmt.Errorf("blklog: hashing image: %w", err)
		}
		copy(id.FullSHA256[:], h.Sum(nil))
		id.HasFull = true
	}
	return id, nil
}

// CheckImage reports whether img (size bytes) is the starting image the log
// with header h was recorded against, comparing size and the hash of the
// first RegionSize bytes. Logs that do not record an identity (dm-log-writes,
// qemu-trace) pass. Use CheckImageFull to also compare the full-content hash.
func CheckImage(h Header, img io.ReaderAt, size int64) error {
	return checkImage(h, img, size, false)
}

// CheckImageFull is CheckImage plus the full-content hash when the log has
// one (it reads the whole image).
func CheckImageFull(h Header, img io.ReaderAt, size int64) error {
	return checkImage(h, img, size, true)
}

func checkImage(h Header, img io.ReaderAt, size int64, full bool) error {
	want := h.Image
	if !want.Known {
		return nil
	}
	if uint64(size) != want.Size {
		return fmt.Errorf("%w: image is %d bytes, the log was recorded against a %d-byte image", ErrImageMismatch, size, want.Size)
	}
	got, err := IdentifyImage(img, size, full && want.HasFull)
	if err != nil {
		return err
	}
	if got.RegionLen != want.RegionLen || got.RegionSHA256 != want.RegionSHA256 {
		return fmt.Errorf("%w: SHA-256 of the first %d bytes (superblock region) is %s, the log expects %s",
			ErrImageMismatch, want.RegionLen, short(got.RegionSHA256[:]), short(want.RegionSHA256[:]))
	}
	if full && want.HasFull && !bytes.Equal(got.FullSHA256[:], want.FullSHA256[:]) {
		return fmt.Errorf("%w: SHA-256 of the whole image is %s, the log expects %s",
			ErrImageMismatch, short(got.FullSHA256[:]), short(want.FullSHA256[:]))
	}
	return nil
}

func short(b []byte) string { return hex.EncodeToString(b[:8]) + "…" }
