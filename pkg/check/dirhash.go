package check

import "math/bits"

// Directory-index hashes (ext4's dx_hash_info, e2fsprogs lib/ext2fs/dirhash.c): the hash an
// htree keys a name by. Written from the on-disk format's description (ext-ondisk.md, the
// kernel's Documentation/filesystems/ext4/directory.rst): legacy (dx_hack_hash), half-MD4 and
// TEA, each with signed or unsigned char input (s_flags, EXT2_FLAGS_UNSIGNED_HASH).

// Hash versions as e2fsck uses them: the on-disk dx_root hash_version, plus 3 when the
// superblock says chars are unsigned.
const (
	hashLegacy         = 0
	hashHalfMD4        = 1
	hashTEA            = 2
	hashLegacyUnsigned = 3
	hashHalfMD4Unsign  = 4
	hashTEAUnsigned    = 5
	hashSipHash        = 6 // casefolded, encrypted names: keyed by a secret, not checked here

	sbFlagUnsignedHash = 0x2 // EXT2_FLAGS_UNSIGNED_HASH in s_flags
)

// dirHash is the major hash of name under hash version v with the superblock's seed, with the
// low bit cleared (it marks collision continuations in index entries), as e2fsck compares it.
// ok is false for a version it cannot compute.
func dirHash(v int, name []byte, seed [4]uint32) (h uint32, ok bool) {
	buf := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	if seed != [4]uint32{} {
		buf = seed
	}
	var in [8]uint32
	if len(name) == 0 {
		return 0, false // a directory entry always has a name (e2fsck: PR_2_NULL_NAME)
	}
	switch v {
	case hashLegacy, hashLegacyUnsigned:
		h = dxHackHash(name, v == hashLegacy)
	case hashHalfMD4, hashHalfMD4Unsign:
		for p := name; ; p = p[32:] {
			str2hashbuf(p, in[:8], v == hashHalfMD4)
			halfMD4(&buf, &in)
			if len(p) <= 32 {
				break
			}
		}
		h = buf[1]
	case hashTEA, hashTEAUnsigned:
		for p := name; ; p = p[16:] {
			str2hashbuf(p, in[:4], v == hashTEA)
			tea(&buf, &in)
			if len(p) <= 16 {
				break
			}
		}
		h = buf[0]
	default:
		return 0, false
	}
	h &^= 1
	if h == 0x7fffffff<<1 { // EXT4_HTREE_EOF_32BIT<<1 is reserved for the end of the directory
		h = (0x7fffffff - 1) << 1
	}
	return h, true
}

// char is one name byte as the hash sees it: a C char, signed or not.
func char(c byte, signed bool) uint32 {
	if signed {
		return uint32(int32(int8(c)))
	}
	return uint32(c)
}

func dxHackHash(name []byte, signed bool) uint32 {
	h0, h1 := uint32(0x12a3fe2d), uint32(0x37abe8f9)
	for _, c := range name {
		h := h1 + (h0 ^ char(c, signed)*7152373)
		if h&0x80000000 != 0 {
			h -= 0x7fffffff
		}
		h1, h0 = h0, h
	}
	return h0 << 1
}

// str2hashbuf packs up to 4*len(out) bytes of msg into out, big-end first within each word,
// padded with a word made of the length of what is left of the name.
func str2hashbuf(msg []byte, out []uint32, signed bool) {
	n := len(msg)
	pad := uint32(n) | uint32(n)<<8
	pad |= pad << 16
	val := pad
	if n > 4*len(out) {
		n = 4 * len(out)
	}
	k := 0
	for i := 0; i < n; i++ {
		val = char(msg[i], signed) + val<<8
		if i%4 == 3 {
			out[k] = val
			k++
			val = pad
		}
	}
	if k < len(out) {
		out[k] = val
		k++
	}
	for ; k < len(out); k++ {
		out[k] = pad
	}
}

func halfMD4(buf *[4]uint32, in *[8]uint32) {
	const k2, k3 = 0x5A827999, 0x6ED9EBA1 // 013240474631, 015666365641
	f := func(x, y, z uint32) uint32 { return z ^ (x & (y ^ z)) }
	g := func(x, y, z uint32) uint32 { return (x & y) + ((x ^ y) & z) }
	h := func(x, y, z uint32) uint32 { return x ^ y ^ z }
	a, b, c, d := buf[0], buf[1], buf[2], buf[3]
	r := func(fn func(x, y, z uint32) uint32, a *uint32, b, c, d, x uint32, s int) {
		*a = bits.RotateLeft32(*a+fn(b, c, d)+x, s)
	}
	r(f, &a, b, c, d, in[0], 3)
	r(f, &d, a, b, c, in[1], 7)
	r(f, &c, d, a, b, in[2], 11)
	r(f, &b, c, d, a, in[3], 19)
	r(f, &a, b, c, d, in[4], 3)
	r(f, &d, a, b, c, in[5], 7)
	r(f, &c, d, a, b, in[6], 11)
	r(f, &b, c, d, a, in[7], 19)

	r(g, &a, b, c, d, in[1]+k2, 3)
	r(g, &d, a, b, c, in[3]+k2, 5)
	r(g, &c, d, a, b, in[5]+k2, 9)
	r(g, &b, c, d, a, in[7]+k2, 13)
	r(g, &a, b, c, d, in[0]+k2, 3)
	r(g, &d, a, b, c, in[2]+k2, 5)
	r(g, &c, d, a, b, in[4]+k2, 9)
	r(g, &b, c, d, a, in[6]+k2, 13)

	r(h, &a, b, c, d, in[3]+k3, 3)
	r(h, &d, a, b, c, in[7]+k3, 9)
	r(h, &c, d, a, b, in[2]+k3, 11)
	r(h, &b, c, d, a, in[6]+k3, 15)
	r(h, &a, b, c, d, in[1]+k3, 3)
	r(h, &d, a, b, c, in[5]+k3, 9)
	r(h, &c, d, a, b, in[0]+k3, 11)
	r(h, &b, c, d, a, in[4]+k3, 15)

	buf[0] += a
	buf[1] += b
	buf[2] += c
	buf[3] += d
}

func tea(buf *[4]uint32, in *[8]uint32) {
	const delta = 0x9E3779B9
	var sum uint32
	b0, b1 := buf[0], buf[1]
	a, b, c, d := in[0], in[1], in[2], in[3]
	for n := 0; n < 16; n++ {
		sum += delta
		b0 += ((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >> 5) + b)
		b1 += ((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >> 5) + d)
	}
	buf[0] += b0
	buf[1] += b1
}
