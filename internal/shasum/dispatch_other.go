//go:build !amd64

package shasum

// Elsewhere the standard library is used as is (arm64 has SHA instructions, and no scalar
// assembly is written for other architectures).
const useScalar = false

func blockSHA1(h *[5]uint32, p []byte)   { panic("shasum: no scalar SHA-1 on this architecture") }
func blockSHA256(h *[8]uint32, p []byte) { panic("shasum: no scalar SHA-256 on this architecture") }
