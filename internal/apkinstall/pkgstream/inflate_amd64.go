package pkgstream

const haveFastLoop = true

// fastLoop runs block()'s fast loop (inflate_amd64.s) from the state in s and stores the
// state it stops in back into s. tables holds the litlen table, then the distance table.
//
//go:noescape
func fastLoop(s *fastState, tables *[2 * tableSize]uint32) (status int)
