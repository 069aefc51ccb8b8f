//go:build !amd64

package pkgstream

const haveFastLoop = false

// fastLoop is assembly on amd64 only; elsewhere block() runs its Go fast loop.
func fastLoop(s *fastState, tables *[2 * tableSize]uint32) (status int) { return fastSlack }
