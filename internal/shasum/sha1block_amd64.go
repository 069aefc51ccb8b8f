package shasum

// blockSHA1 hashes len(p)/64 full blocks of p into h (sha1block_amd64.s): scalar amd64
// assembly using only base x86-64 instructions, for CPUs where crypto/sha1 falls back to
// generic Go. len(p) is a multiple of 64, possibly 0.
//
//go:noescape
func blockSHA1(h *[5]uint32, p []byte)
