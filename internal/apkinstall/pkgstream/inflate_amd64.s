#include "textflag.h"

// The fast loop of (*inflater).block (inflate.go) for amd64: base x86-64 instructions only.
// It decodes exactly as the Go loop does, with the same slack checks at the top of each
// iteration (pos <= inEnd && n <= outEnd) and the same budgets (see block()): an iteration
// refills at most twice (each loads 8 bytes at pos and advances at most 7, so the input read
// stays below inEnd+16 = len(in)), and writes at most 2 literals and a match rounded up to a
// word (at least 16 bytes, at most 264: n+2+264 <= outEnd+266 = len(out)), or 3 literals. It
// never reads or writes elsewhere: table indexes are masked to the table size, match sources
// start at n-dist >= 0.
//
// Differences from the Go loop, none visible in the result:
//  - a length symbol is decoded only after a refill, and the length and distance are decoded
//    in scratch registers and committed only once both are valid and dist <= n. A symbol it
//    does not handle (invalid code, a distance past the output's start) makes it return
//    fastSymbol with the state at the start of that symbol, for the Go code to re-decode;
//  - an end-of-block code is consumed and reported (fastEOB), in the state the Go loop
//    would return in;
//  - bytes written past the end of a match (within the slack) may differ: they are garbage
//    in both, overwritten by the next symbols.
// A refill does not move the stream position (pos - bitsleft/8): it only tops the buffer up,
// and after one the state is the same whatever was consumed before, so refilling at
// different points never changes what is decoded or the state at the slack exit.
//
// Registers:
//   SI   in + pos (the next input byte)      R14  in + inEnd
//   DI   out                                 R9   n          R15  outEnd
//   R10  bitbuf     R11  bitsleft            R12  tables (litlen, then dist at +32768)
//   AX   the next litlen entry (looked up ahead, unconsumed), then scratch
//   BX CX DX R8 R13   scratch; CX is every variable shift count
//
// Tuned for QEMU TCG (qemu-user, qemu64): every shift by CL is followed by an instruction that
// overwrites the flags before any memory access or branch (else TCG computes its flags in a
// helper), loads and stores are paired where the data flow allows (each guest memory access
// writes back the registers modified since the previous one), 64-bit ALU forms throughout.
// In qemu's output (-d op_opt,out_asm) nearly every guest register write is then a host
// store, and each conditional branch ends a translation block (a prologue check, the exit):
// the cost is about the number of register writes and branches. (Merging branches with
// arithmetic, e.g. the distance checks into one, saved up to ~5% under qemu64 and cost as
// much natively: not done.)

// fastState offsets (TestFastStateLayout).
#define S_OUT 0
#define S_N 16
#define S_IN 24
#define S_POS 40
#define S_BITBUF 48
#define S_BITSLEFT 56
#define S_INEND 64
#define S_OUTEND 72

#define DIST 32768 // the distance table's offset from the litlen table

#define LLMASK 2047
#define DISTMASK 511
#define TABLEMASK 8191

#define ENTRY_EOB 0x2000
#define ENTRY_SUB 0x4000
#define ENTRY_EXC 0x8000

// REFILL(T): bitbuf |= load64(in[pos:]) << bitsleft; pos += (63-bitsleft)>>3; bitsleft |= 56.
// bitsleft <= 63, so 63-bitsleft = bitsleft^63. Clobbers CX and T.
#define REFILL(T) \
	MOVQ (SI), T; \
	MOVQ R11, CX; \
	SHLQ CX, T; \
	ORQ  T, R10; \
	XORQ $63, CX; \
	SHRQ $3, CX; \
	ADDQ CX, SI; \
	ORQ  $56, R11

// CONSUME: drop entry AX's bits (its low byte) from the bit buffer. Clobbers CX.
#define CONSUME \
	MOVBQZX AX, CX; \
	SHRQ    CX, R10; \
	SUBQ    CX, R11

// LITERAL: consume literal entry AX, write its byte at n, look the next entry up into AX.
// The store and the load are adjacent (no register write-back between them under TCG).
#define LITERAL \
	CONSUME; \
	SHRQ $16, AX; \
	MOVQ R10, BX; \
	ANDQ $LLMASK, BX; \
	MOVB AX, (DI)(R9*1); \
	MOVL (R12)(BX*4), AX

// SUBINDEX(E, B, N, R): R = the subtable index for pointer entry E: its start plus the
// bits of bitbuf B above the primary table's N bits, masked to the subtable's bits, and to
// the table size. Clobbers CX and E.
#define SUBINDEX(E, B, N, R) \
	MOVQ E, CX; \
	SHRQ $8, CX; \
	ANDQ $15, CX; \
	MOVQ $1, R; \
	SHLQ CX, R; \
	SUBQ $1, R; \
	MOVQ B, CX; \
	SHRQ $N, CX; \
	ANDQ CX, R; \
	SHRQ $16, E; \
	ADDQ E, R; \
	ANDQ $TABLEMASK, R

// NEXT ends every path: the top of the loop, as in Go (pos <= inEnd && n <= outEnd), then
// to lit or notlit by the kind of AX.
#define NEXT \
	CMPQ  SI, R14; \
	JHI   slack; \
	CMPQ  R9, R15; \
	JGT   slack; \
	TESTL AX, AX; \
	JS    lit; \
	JMP   notlit

// DISTANCE: AX a distance entry: R13 = dist = base + the extra bits above the code's own
// bits, consumed from DX (bitbuf) and BX (bitsleft). Clobbers CX. For an exceptional entry
// R13 is meaningless and nothing is committed: a subtable pointer consumes nothing (its low
// byte is 0), the others (invalid codes, symbols 30/31) end the loop.
#define DISTANCE \
	MOVBQZX AX, CX; \
	MOVQ    $1, R13; \
	SHLQ    CX, R13; \
	SUBQ    $1, R13; \
	ANDQ    DX, R13; \
	SHRQ    CX, DX; \
	SUBQ    CX, BX; \
	MOVQ    AX, CX; \
	SHRQ    $8, CX; \
	ANDQ    $15, CX; \
	SHRQ    CX, R13; \
	MOVQ    AX, CX; \
	SHRQ    $16, CX; \
	ADDQ    CX, R13

// COMMIT: the length and distance are valid: keep their bits consumed, refill, and look the
// next symbol up (>= 8 bits were left, >= 56 now).
#define COMMIT \
	MOVQ DX, R10; \
	MOVQ BX, R11; \
	REFILL(DX); \
	MOVQ R10, AX; \
	ANDQ $LLMASK, AX; \
	MOVL (R12)(AX*4), AX

// func fastLoop(s *fastState, tables *[2 * tableSize]uint32) (status int)
TEXT ·fastLoop(SB), NOSPLIT, $0-24
	MOVQ s+0(FP), AX
	MOVQ tables+8(FP), R12
	MOVQ S_OUT(AX), DI
	MOVQ S_N(AX), R9
	MOVQ S_IN(AX), SI
	MOVQ S_INEND(AX), R14
	MOVQ S_POS(AX), R8
	MOVQ S_BITBUF(AX), R10
	MOVQ S_BITSLEFT(AX), R11
	MOVQ S_OUTEND(AX), R15
	ADDQ SI, R14
	ADDQ R8, SI
	MOVQ R10, AX
	ANDQ $LLMASK, AX
	MOVL (R12)(AX*4), AX
	NEXT

lit:
	// The top of the loop (bitsleft >= 56, the checks passed) with a literal in AX: up to
	// three literals (3*11 bits, and 11 for the lookup after them), then a refill.
	LITERAL
	ADDQ  $1, R9
	TESTL AX, AX
	JNS   notlit
	LITERAL
	ADDQ  $1, R9
	TESTL AX, AX
	JNS   notlit
	LITERAL
	REFILL(DX)
	ADDQ  $1, R9
	NEXT

notlit:
	// At the start of a symbol, >= 56-2*11 = 34 bits left; AX is not a literal.
	TESTL $ENTRY_EXC, AX
	JZ    length
	TESTL $ENTRY_SUB, AX
	JZ    exc

	// Litlen subtable: the pointer consumes nothing; the lookup peeks at <= 15 bits.
	SUBINDEX(AX, R10, 11, BX)
	MOVL  (R12)(BX*4), AX
	TESTL AX, AX
	JNS   subnotlit
	LITERAL // <= 15 bits consumed, >= 19 left for the lookup
	REFILL(DX)
	ADDQ  $1, R9
	NEXT

subnotlit:
	TESTL $ENTRY_EXC, AX
	JZ    length

exc:
	// End of block (consumed and reported) or an invalid code (left to the Go code).
	TESTL $ENTRY_EOB, AX
	JZ    symbol
	CONSUME
	MOVQ  $2, AX
	JMP   done

length:
	// AX: a length entry, unconsumed. Refill first (the state stays at this symbol's
	// start), then the length (<= 20 bits) and distance (<= 28) fit in the >= 56 bits:
	// they are decoded in DX (bitbuf) and BX (bitsleft) and committed only if valid.
	REFILL(DX)
	MOVQ    R10, DX
	MOVQ    R11, BX
	MOVBQZX AX, CX
	SHRQ    CX, DX
	SUBQ    CX, BX
	MOVQ    AX, CX
	SHRQ    $8, CX
	ANDQ    $15, CX
	MOVQ    $1, R8
	SHLQ    CX, R8
	SUBQ    $1, R8
	ANDQ    DX, R8
	SHRQ    CX, DX
	SUBQ    CX, BX
	SHRQ    $16, AX
	ADDQ    AX, R8 // R8 = length
	MOVQ    DX, AX
	ANDQ    $DISTMASK, AX
	MOVL    DIST(R12)(AX*4), AX
	DISTANCE
	TESTL   $ENTRY_EXC, AX
	JNZ     distslow
	CMPQ    R13, R9
	JHI     symbol // dist > n: left to the Go code
	CMPQ    R13, $8
	JB      distshort

match:
	// dist (R13) in 8..n: commit, then copy length (R8) bytes in words; each word's source
	// ends at or before its destination starts. Two words unconditionally (most matches
	// are short), the rest in matchmore.
	COMMIT
	MOVQ R9, BX
	SUBQ R13, BX // BX = src
	ADDQ R9, R8  // R8 = end
	MOVQ (DI)(BX*1), CX
	MOVQ CX, (DI)(R9*1)
	MOVQ 8(DI)(BX*1), DX
	MOVQ DX, 8(DI)(R9*1)
	LEAQ 16(R9), R13 // R13 = the next destination
	MOVQ R8, R9      // n = end
	CMPQ R13, R8
	JLT  matchmore
	NEXT

matchmore:
	ADDQ $16, BX
	MOVQ R8, CX
	SUBQ R13, CX
	CMPQ CX, $240
	JA   words // length > 256: two words at a time would write past n+264

words16:
	// Up to 15 bytes past the end: length <= 256 here, so the last pair ends by n+256.
	MOVQ (DI)(BX*1), CX
	MOVQ CX, (DI)(R13*1)
	MOVQ 8(DI)(BX*1), DX
	MOVQ DX, 8(DI)(R13*1)
	ADDQ $16, R13
	ADDQ $16, BX
	CMPQ R13, R8
	JLT  words16
	NEXT

words:
	// Words from BX to R13 while R13 < end (R8): up to 7 bytes past the end.
	MOVQ (DI)(BX*1), CX
	MOVQ CX, (DI)(R13*1)
	ADDQ $8, R13
	ADDQ $8, BX
	CMPQ R13, R8
	JLT  words
	NEXT

distslow:
	// Distance subtable pointer (>= 36 bits left: the lookup peeks at <= 15), or invalid;
	// either consumed nothing.
	TESTL $ENTRY_SUB, AX
	JZ    symbol
	SUBINDEX(AX, DX, 9, R13)
	MOVL  DIST(R12)(R13*4), AX
	TESTL $ENTRY_EXC, AX
	JNZ   symbol
	DISTANCE
	CMPQ R13, R9
	JHI  symbol  // dist > n: left to the Go code
	CMPQ R13, $8
	JAE  match

distshort:
	// dist 1..7.
	COMMIT
	MOVQ R9, BX
	SUBQ R13, BX // BX = src
	ADDQ R9, R8  // R8 = end
	CMPQ R13, $1
	JNE  period

	// dist 1: a run of one byte, up to 7 bytes past the end.
	MOVBQZX (DI)(BX*1), CX
	MOVQ    $0x0101010101010101, DX
	IMULQ   DX, CX

run:
	MOVQ CX, (DI)(R9*1)
	ADDQ $8, R9
	CMPQ R9, R8
	JLT  run
	MOVQ R8, R9
	NEXT

period:
	// dist 2..7: build the first 8 bytes of the repeating pattern in DX from the dist bytes
	// at src (the word load reads at most n+5 < len(out)), then copy words from p back,
	// p the smallest multiple of dist >= 8, as in words.
	MOVQ (DI)(BX*1), DX
	MOVQ R13, CX
	SHLQ $3, CX          // 8*dist: 16..56
	MOVQ $1, BX
	SHLQ CX, BX
	SUBQ $1, BX
	ANDQ BX, DX          // dist bytes
	MOVQ DX, BX
	SHLQ CX, BX
	ORQ  BX, DX          // 2*dist bytes: >= 8 for dist >= 4
	CMPQ R13, $4
	JAE  pattern
	ADDQ CX, CX          // 16*dist: 32 or 48
	MOVQ DX, BX
	SHLQ CX, BX
	ORQ  BX, DX          // 4*dist bytes >= 8

pattern:
	MOVQ DX, (DI)(R9*1)
	MOVQ $0x0E0C0A0809080800, BX // byte d: the smallest multiple of d >= 8
	MOVQ R13, CX
	SHLQ $3, CX
	SHRQ CX, BX
	ANDQ $0xff, BX
	LEAQ 8(R9), R13      // R13 = the next destination
	MOVQ R8, R9          // n = end
	NEGQ BX
	ADDQ R13, BX         // src = dest - p: [src, src+8) ends at or before dest
	CMPQ R13, R8
	JLT  words
	NEXT

slack:
	MOVQ $0, AX
	JMP  done

symbol:
	MOVQ $1, AX

done:
	MOVQ s+0(FP), DX
	SUBQ S_IN(DX), SI
	MOVQ R9, S_N(DX)
	MOVQ SI, S_POS(DX)
	MOVQ R10, S_BITBUF(DX)
	MOVQ R11, S_BITSLEFT(DX)
	MOVQ AX, status+16(FP)
	RET
