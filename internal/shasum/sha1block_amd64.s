#include "textflag.h"

// Scalar SHA-1 block function for amd64 CPUs without SHA-NI/AVX2 (Atom routers, QEMU's
// qemu64), where crypto/sha1 since Go 1.24 runs generic Go. Base x86-64 instructions only.
//
// FIPS 180-4 §6.1.2, the 80 rounds fully unrolled, one 64-byte block per loop iteration:
//   a..e         AX BX CX DX R8; the roles rotate through the macro arguments: after a
//                round the new a is in the old e's register, and b, rotated in place,
//                is the next c (80 rounds are 16 full turns, so the roles end as they began)
//   R9, R10      f(b,c,d) and rol5(a)
//   R11 R12 R13  w[i] of the last three rounds, w[i] in R11+(i mod 3): the register that
//                held w[i-3] becomes w[i] in place, so w[i-3] is never reloaded
//   R14          two adjacent schedule words at once (the low and high 32 bits)
//   0..63(SP)    the ring of w[i] (slot i&15) for the w[i-8], w[i-14], w[i-16] terms
//   SI, DI       the current block, the end of the whole blocks
//
// Tuned for QEMU TCG (qemu-user), where the cost is per guest instruction and per memory
// access (each guest load/store first writes every modified guest register back):
//  - the XOR of the schedule is lane-wise, so w[i-8]^w[i-14]^w[i-16] for an even i and the
//    same for i+1 come from three 64-bit loads (pairs never straddle the ring's end), and
//    the block's words are read two at a time too;
//  - TCG materialises the flags of ROL with a helper call unless a later instruction
//    overwrites them before the next memory access, so every ROL is followed by an
//    ADD/logic instruction before any load or store (the flags are never used).

// The round constants of rounds 0-19, 20-39, 40-59 and 60-79 (LEAL takes them as the
// displacement; the last two are > 2^31, which only changes bits above 32).
#define K0 0x5A827999
#define K1 0x6ED9EBA1
#define K2 0x8F1BBCDC
#define K3 0xCA62C1D6

// LOAD2(i, W0, W1), i even < 16: W0 = w[i] (low 32 bits), W1 = w[i+1], the block's words
// i and i+1 read big-endian with one load, and both stored in ring slots i, i+1 at once.
#define LOAD2(i, W0, W1) \
	MOVQ ((i)*4)(SI), W0; \
	BSWAPQ W0; \
	ROLQ $32, W0; \
	MOVQ W0, W1; \
	SHRQ $32, W1; \
	MOVQ W0, ((i)*4)(SP)

// SCHED_EVEN(i, W): R14 = (w[i-8]^w[i-14]^w[i-16]) | (w[i-7]^w[i-13]^w[i-15])<<32 and
// W (holding w[i-3]) = w[i] = rol1(w[i-3]^w[i-8]^w[i-14]^w[i-16]).
#define SCHED_EVEN(i, W) \
	MOVQ ((((i)-8)&15)*4)(SP), R14; \
	XORQ ((((i)-14)&15)*4)(SP), R14; \
	XORQ (((i)&15)*4)(SP), R14; \
	XORL R14, W; \
	ROLL $1, W

// SCHED_ODD(W), the round after SCHED_EVEN: W (holding w[i-3]) = w[i] from R14's high half.
#define SCHED_ODD(W) \
	SHRQ $32, R14; \
	XORL R14, W; \
	ROLL $1, W

// STORE(i, W): ring slot i&15 (w[i-16], already read) = w[i], for rounds i+8, i+14, i+16;
// not needed from round 72 on. Placed after a flag-writing instruction (see above).
#define STORE(i, W) \
	MOVL W, (((i)&15)*4)(SP)

// CH, rounds 0-19: R9 = Ch(b,c,d) = (b&c)|(^b&d), as d ^ (b & (c^d)) without a NOT.
#define CH_HEAD(b, c, d) \
	MOVL c, R9; \
	XORL d, R9
#define CH_TAIL(b, c, d) \
	ANDL b, R9; \
	XORL d, R9

// PAR, rounds 20-39 and 60-79: R9 = b^c^d.
#define PAR_HEAD(b, c, d) \
	MOVL b, R9; \
	XORL c, R9
#define PAR_TAIL(b, c, d) \
	XORL d, R9

// MAJ, rounds 40-59: R9 = Maj(b,c,d) = (d&(b|c))|(b&c), the majority of each bit.
#define MAJ_HEAD(b, c, d) \
	MOVL b, R9; \
	ORL c, R9
#define MAJ_TAIL(b, c, d) \
	ANDL d, R9; \
	MOVL b, R10; \
	ANDL c, R10; \
	ORL R10, R9

// MIX(a, b, e, K, W): e = e + K + w[i] + f + rol5(a), the new a; b = rol30(b), the new c.
#define MIX(a, b, e, K, W) \
	ROLL $30, b; \
	LEAL K(e)(W*1), e; \
	ADDL R9, e; \
	MOVL a, R10; \
	ROLL $5, R10; \
	ADDL R10, e

// func blockSHA1(h *[5]uint32, p []byte)
TEXT ·blockSHA1(SB), NOSPLIT, $64-32
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), DI
	ANDQ $~63, DI                // whole blocks only
	ADDQ SI, DI                  // DI = end of the last block
	CMPQ SI, DI
	JEQ  done                    // no block (len(p) == 0)

	MOVQ h+0(FP), R14
	MOVL 0(R14), AX
	MOVL 4(R14), BX
	MOVL 8(R14), CX
	MOVL 12(R14), DX
	MOVL 16(R14), R8

loop:
	LOAD2(0, R11, R12); CH_HEAD(BX, CX, DX); CH_TAIL(BX, CX, DX); MIX(AX, BX, R8, K0, R11)
	CH_HEAD(AX, BX, CX); CH_TAIL(AX, BX, CX); MIX(R8, AX, DX, K0, R12)
	LOAD2(2, R13, R11); CH_HEAD(R8, AX, BX); CH_TAIL(R8, AX, BX); MIX(DX, R8, CX, K0, R13)
	CH_HEAD(DX, R8, AX); CH_TAIL(DX, R8, AX); MIX(CX, DX, BX, K0, R11)
	LOAD2(4, R12, R13); CH_HEAD(CX, DX, R8); CH_TAIL(CX, DX, R8); MIX(BX, CX, AX, K0, R12)
	CH_HEAD(BX, CX, DX); CH_TAIL(BX, CX, DX); MIX(AX, BX, R8, K0, R13)
	LOAD2(6, R11, R12); CH_HEAD(AX, BX, CX); CH_TAIL(AX, BX, CX); MIX(R8, AX, DX, K0, R11)
	CH_HEAD(R8, AX, BX); CH_TAIL(R8, AX, BX); MIX(DX, R8, CX, K0, R12)
	LOAD2(8, R13, R11); CH_HEAD(DX, R8, AX); CH_TAIL(DX, R8, AX); MIX(CX, DX, BX, K0, R13)
	CH_HEAD(CX, DX, R8); CH_TAIL(CX, DX, R8); MIX(BX, CX, AX, K0, R11)
	LOAD2(10, R12, R13); CH_HEAD(BX, CX, DX); CH_TAIL(BX, CX, DX); MIX(AX, BX, R8, K0, R12)
	CH_HEAD(AX, BX, CX); CH_TAIL(AX, BX, CX); MIX(R8, AX, DX, K0, R13)
	LOAD2(12, R11, R12); CH_HEAD(R8, AX, BX); CH_TAIL(R8, AX, BX); MIX(DX, R8, CX, K0, R11)
	CH_HEAD(DX, R8, AX); CH_TAIL(DX, R8, AX); MIX(CX, DX, BX, K0, R12)
	LOAD2(14, R13, R11); CH_HEAD(CX, DX, R8); CH_TAIL(CX, DX, R8); MIX(BX, CX, AX, K0, R13)
	CH_HEAD(BX, CX, DX); CH_TAIL(BX, CX, DX); MIX(AX, BX, R8, K0, R11)
	SCHED_EVEN(16, R12); CH_HEAD(AX, BX, CX); STORE(16, R12); CH_TAIL(AX, BX, CX); MIX(R8, AX, DX, K0, R12)
	SCHED_ODD(R13); CH_HEAD(R8, AX, BX); STORE(17, R13); CH_TAIL(R8, AX, BX); MIX(DX, R8, CX, K0, R13)
	SCHED_EVEN(18, R11); CH_HEAD(DX, R8, AX); STORE(18, R11); CH_TAIL(DX, R8, AX); MIX(CX, DX, BX, K0, R11)
	SCHED_ODD(R12); CH_HEAD(CX, DX, R8); STORE(19, R12); CH_TAIL(CX, DX, R8); MIX(BX, CX, AX, K0, R12)

	SCHED_EVEN(20, R13); PAR_HEAD(BX, CX, DX); STORE(20, R13); PAR_TAIL(BX, CX, DX); MIX(AX, BX, R8, K1, R13)
	SCHED_ODD(R11); PAR_HEAD(AX, BX, CX); STORE(21, R11); PAR_TAIL(AX, BX, CX); MIX(R8, AX, DX, K1, R11)
	SCHED_EVEN(22, R12); PAR_HEAD(R8, AX, BX); STORE(22, R12); PAR_TAIL(R8, AX, BX); MIX(DX, R8, CX, K1, R12)
	SCHED_ODD(R13); PAR_HEAD(DX, R8, AX); STORE(23, R13); PAR_TAIL(DX, R8, AX); MIX(CX, DX, BX, K1, R13)
	SCHED_EVEN(24, R11); PAR_HEAD(CX, DX, R8); STORE(24, R11); PAR_TAIL(CX, DX, R8); MIX(BX, CX, AX, K1, R11)
	SCHED_ODD(R12); PAR_HEAD(BX, CX, DX); STORE(25, R12); PAR_TAIL(BX, CX, DX); MIX(AX, BX, R8, K1, R12)
	SCHED_EVEN(26, R13); PAR_HEAD(AX, BX, CX); STORE(26, R13); PAR_TAIL(AX, BX, CX); MIX(R8, AX, DX, K1, R13)
	SCHED_ODD(R11); PAR_HEAD(R8, AX, BX); STORE(27, R11); PAR_TAIL(R8, AX, BX); MIX(DX, R8, CX, K1, R11)
	SCHED_EVEN(28, R12); PAR_HEAD(DX, R8, AX); STORE(28, R12); PAR_TAIL(DX, R8, AX); MIX(CX, DX, BX, K1, R12)
	SCHED_ODD(R13); PAR_HEAD(CX, DX, R8); STORE(29, R13); PAR_TAIL(CX, DX, R8); MIX(BX, CX, AX, K1, R13)
	SCHED_EVEN(30, R11); PAR_HEAD(BX, CX, DX); STORE(30, R11); PAR_TAIL(BX, CX, DX); MIX(AX, BX, R8, K1, R11)
	SCHED_ODD(R12); PAR_HEAD(AX, BX, CX); STORE(31, R12); PAR_TAIL(AX, BX, CX); MIX(R8, AX, DX, K1, R12)
	SCHED_EVEN(32, R13); PAR_HEAD(R8, AX, BX); STORE(32, R13); PAR_TAIL(R8, AX, BX); MIX(DX, R8, CX, K1, R13)
	SCHED_ODD(R11); PAR_HEAD(DX, R8, AX); STORE(33, R11); PAR_TAIL(DX, R8, AX); MIX(CX, DX, BX, K1, R11)
	SCHED_EVEN(34, R12); PAR_HEAD(CX, DX, R8); STORE(34, R12); PAR_TAIL(CX, DX, R8); MIX(BX, CX, AX, K1, R12)
	SCHED_ODD(R13); PAR_HEAD(BX, CX, DX); STORE(35, R13); PAR_TAIL(BX, CX, DX); MIX(AX, BX, R8, K1, R13)
	SCHED_EVEN(36, R11); PAR_HEAD(AX, BX, CX); STORE(36, R11); PAR_TAIL(AX, BX, CX); MIX(R8, AX, DX, K1, R11)
	SCHED_ODD(R12); PAR_HEAD(R8, AX, BX); STORE(37, R12); PAR_TAIL(R8, AX, BX); MIX(DX, R8, CX, K1, R12)
	SCHED_EVEN(38, R13); PAR_HEAD(DX, R8, AX); STORE(38, R13); PAR_TAIL(DX, R8, AX); MIX(CX, DX, BX, K1, R13)
	SCHED_ODD(R11); PAR_HEAD(CX, DX, R8); STORE(39, R11); PAR_TAIL(CX, DX, R8); MIX(BX, CX, AX, K1, R11)

	SCHED_EVEN(40, R12); MAJ_HEAD(BX, CX, DX); STORE(40, R12); MAJ_TAIL(BX, CX, DX); MIX(AX, BX, R8, K2, R12)
	SCHED_ODD(R13); MAJ_HEAD(AX, BX, CX); STORE(41, R13); MAJ_TAIL(AX, BX, CX); MIX(R8, AX, DX, K2, R13)
	SCHED_EVEN(42, R11); MAJ_HEAD(R8, AX, BX); STORE(42, R11); MAJ_TAIL(R8, AX, BX); MIX(DX, R8, CX, K2, R11)
	SCHED_ODD(R12); MAJ_HEAD(DX, R8, AX); STORE(43, R12); MAJ_TAIL(DX, R8, AX); MIX(CX, DX, BX, K2, R12)
	SCHED_EVEN(44, R13); MAJ_HEAD(CX, DX, R8); STORE(44, R13); MAJ_TAIL(CX, DX, R8); MIX(BX, CX, AX, K2, R13)
	SCHED_ODD(R11); MAJ_HEAD(BX, CX, DX); STORE(45, R11); MAJ_TAIL(BX, CX, DX); MIX(AX, BX, R8, K2, R11)
	SCHED_EVEN(46, R12); MAJ_HEAD(AX, BX, CX); STORE(46, R12); MAJ_TAIL(AX, BX, CX); MIX(R8, AX, DX, K2, R12)
	SCHED_ODD(R13); MAJ_HEAD(R8, AX, BX); STORE(47, R13); MAJ_TAIL(R8, AX, BX); MIX(DX, R8, CX, K2, R13)
	SCHED_EVEN(48, R11); MAJ_HEAD(DX, R8, AX); STORE(48, R11); MAJ_TAIL(DX, R8, AX); MIX(CX, DX, BX, K2, R11)
	SCHED_ODD(R12); MAJ_HEAD(CX, DX, R8); STORE(49, R12); MAJ_TAIL(CX, DX, R8); MIX(BX, CX, AX, K2, R12)
	SCHED_EVEN(50, R13); MAJ_HEAD(BX, CX, DX); STORE(50, R13); MAJ_TAIL(BX, CX, DX); MIX(AX, BX, R8, K2, R13)
	SCHED_ODD(R11); MAJ_HEAD(AX, BX, CX); STORE(51, R11); MAJ_TAIL(AX, BX, CX); MIX(R8, AX, DX, K2, R11)
	SCHED_EVEN(52, R12); MAJ_HEAD(R8, AX, BX); STORE(52, R12); MAJ_TAIL(R8, AX, BX); MIX(DX, R8, CX, K2, R12)
	SCHED_ODD(R13); MAJ_HEAD(DX, R8, AX); STORE(53, R13); MAJ_TAIL(DX, R8, AX); MIX(CX, DX, BX, K2, R13)
	SCHED_EVEN(54, R11); MAJ_HEAD(CX, DX, R8); STORE(54, R11); MAJ_TAIL(CX, DX, R8); MIX(BX, CX, AX, K2, R11)
	SCHED_ODD(R12); MAJ_HEAD(BX, CX, DX); STORE(55, R12); MAJ_TAIL(BX, CX, DX); MIX(AX, BX, R8, K2, R12)
	SCHED_EVEN(56, R13); MAJ_HEAD(AX, BX, CX); STORE(56, R13); MAJ_TAIL(AX, BX, CX); MIX(R8, AX, DX, K2, R13)
	SCHED_ODD(R11); MAJ_HEAD(R8, AX, BX); STORE(57, R11); MAJ_TAIL(R8, AX, BX); MIX(DX, R8, CX, K2, R11)
	SCHED_EVEN(58, R12); MAJ_HEAD(DX, R8, AX); STORE(58, R12); MAJ_TAIL(DX, R8, AX); MIX(CX, DX, BX, K2, R12)
	SCHED_ODD(R13); MAJ_HEAD(CX, DX, R8); STORE(59, R13); MAJ_TAIL(CX, DX, R8); MIX(BX, CX, AX, K2, R13)

	SCHED_EVEN(60, R11); PAR_HEAD(BX, CX, DX); STORE(60, R11); PAR_TAIL(BX, CX, DX); MIX(AX, BX, R8, K3, R11)
	SCHED_ODD(R12); PAR_HEAD(AX, BX, CX); STORE(61, R12); PAR_TAIL(AX, BX, CX); MIX(R8, AX, DX, K3, R12)
	SCHED_EVEN(62, R13); PAR_HEAD(R8, AX, BX); STORE(62, R13); PAR_TAIL(R8, AX, BX); MIX(DX, R8, CX, K3, R13)
	SCHED_ODD(R11); PAR_HEAD(DX, R8, AX); STORE(63, R11); PAR_TAIL(DX, R8, AX); MIX(CX, DX, BX, K3, R11)
	SCHED_EVEN(64, R12); PAR_HEAD(CX, DX, R8); STORE(64, R12); PAR_TAIL(CX, DX, R8); MIX(BX, CX, AX, K3, R12)
	SCHED_ODD(R13); PAR_HEAD(BX, CX, DX); STORE(65, R13); PAR_TAIL(BX, CX, DX); MIX(AX, BX, R8, K3, R13)
	SCHED_EVEN(66, R11); PAR_HEAD(AX, BX, CX); STORE(66, R11); PAR_TAIL(AX, BX, CX); MIX(R8, AX, DX, K3, R11)
	SCHED_ODD(R12); PAR_HEAD(R8, AX, BX); STORE(67, R12); PAR_TAIL(R8, AX, BX); MIX(DX, R8, CX, K3, R12)
	SCHED_EVEN(68, R13); PAR_HEAD(DX, R8, AX); STORE(68, R13); PAR_TAIL(DX, R8, AX); MIX(CX, DX, BX, K3, R13)
	SCHED_ODD(R11); PAR_HEAD(CX, DX, R8); STORE(69, R11); PAR_TAIL(CX, DX, R8); MIX(BX, CX, AX, K3, R11)
	SCHED_EVEN(70, R12); PAR_HEAD(BX, CX, DX); STORE(70, R12); PAR_TAIL(BX, CX, DX); MIX(AX, BX, R8, K3, R12)
	SCHED_ODD(R13); PAR_HEAD(AX, BX, CX); STORE(71, R13); PAR_TAIL(AX, BX, CX); MIX(R8, AX, DX, K3, R13)
	SCHED_EVEN(72, R11); PAR_HEAD(R8, AX, BX); PAR_TAIL(R8, AX, BX); MIX(DX, R8, CX, K3, R11)
	SCHED_ODD(R12); PAR_HEAD(DX, R8, AX); PAR_TAIL(DX, R8, AX); MIX(CX, DX, BX, K3, R12)
	SCHED_EVEN(74, R13); PAR_HEAD(CX, DX, R8); PAR_TAIL(CX, DX, R8); MIX(BX, CX, AX, K3, R13)
	SCHED_ODD(R11); PAR_HEAD(BX, CX, DX); PAR_TAIL(BX, CX, DX); MIX(AX, BX, R8, K3, R11)
	SCHED_EVEN(76, R12); PAR_HEAD(AX, BX, CX); PAR_TAIL(AX, BX, CX); MIX(R8, AX, DX, K3, R12)
	SCHED_ODD(R13); PAR_HEAD(R8, AX, BX); PAR_TAIL(R8, AX, BX); MIX(DX, R8, CX, K3, R13)
	SCHED_EVEN(78, R11); PAR_HEAD(DX, R8, AX); PAR_TAIL(DX, R8, AX); MIX(CX, DX, BX, K3, R11)
	SCHED_ODD(R12); PAR_HEAD(CX, DX, R8); PAR_TAIL(CX, DX, R8); MIX(BX, CX, AX, K3, R12)

	// h += the block's result; the registers keep the new h for the next block.
	MOVQ h+0(FP), R14
	ADDL 0(R14), AX
	MOVL AX, 0(R14)
	ADDL 4(R14), BX
	MOVL BX, 4(R14)
	ADDL 8(R14), CX
	MOVL CX, 8(R14)
	ADDL 12(R14), DX
	MOVL DX, 12(R14)
	ADDL 16(R14), R8
	MOVL R8, 16(R14)

	ADDQ $64, SI
	CMPQ SI, DI
	JB   loop

done:
	RET
