package shasum

// blockSHA256 processes the len(p)/64 full blocks of p (scalar assembly in
// sha256block_amd64.s, base x86-64 instructions only), updating h in place.
//
//go:noescape
func blockSHA256(h *[8]uint32, p []byte)
