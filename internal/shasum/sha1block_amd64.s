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
// Only the low 32 bits of a register are meaningful: additions and logic use 64-bit
// instructions and leave carries or stray bits above bit 31, which nothing reads: the low
// 32 bits of a sum or XOR depend only on the low 32 bits of its inputs, a 32-bit ROLL reads
// the low half and zero-extends its result, and h is updated with 32-bit ADDL/MOVL.
//
// Tuned for QEMU TCG (qemu-user), where the cost is per guest instruction and per memory
// access (each guest load/store first writes every modified guest register back):
//  - the XOR of the schedule is lane-wise, so w[i-8]^w[i-14]^w[i-16] for an even i and the
//    same for i+1 come from three 64-bit loads (pairs never straddle the ring's end), the
//    block's words are read two at a time and w[i], w[i+1] stored with one 64-bit store;
//  - TCG materialises the flags of ROL with a helper call unless a later instruction
//    overwrites them before the next memory access, so every ROL is followed by an
//    ADD/shift/logic instruction before any load or store (the flags are never used);
//  - 64-bit ALU instructions spare TCG the zero-extension of each 32-bit result.

// The round constants of rounds 0-19, 20-39, 40-59 and 60-79, as LEAQ's signed 32-bit
// displacement: 0x8F1BBCDC and 0xCA62C1D6 written minus 2^32, equal in the low 32 bits.
#define K0 0x5A827999
#define K1 0x6ED9EBA1
#define K2 -0x70E44324
#define K3 -0x359D3E2A

// LOAD2(i, W0, W1), i even < 16: W0 = w[i] (low half), W1 = w[i+1], block words i and i+1
// read big-endian with one load, and stored as they are to ring slots i, i+1.
#define LOAD2(i, W0, W1) \
	MOVQ ((i)*4)(SI), W0; \
	BSWAPQ W0; \
	ROLQ $32, W0; \
	MOVQ W0, W1; \
	SHRQ $32, W1; \
	MOVQ W0, ((i)*4)(SP)

// SCHED_EVEN(i, W), i even >= 16: R14 = (w[i-8]^w[i-14]^w[i-16]) | (w[i-7]^w[i-13]^w[i-15])<<32,
// and W (holding w[i-3]) = w[i] = rol1(w[i-3]^w[i-8]^w[i-14]^w[i-16]).
#define SCHED_EVEN(i, W) \
	MOVQ ((((i)-8)&15)*4)(SP), R14; \
	XORQ ((((i)-14)&15)*4)(SP), R14; \
	XORQ (((i)&15)*4)(SP), R14; \
	XORQ R14, W; \
	ROLL $1, W

// SCHED_ODD(W), the round after SCHED_EVEN: W (holding w[i-3]) = w[i], from R14's high half.
#define SCHED_ODD(W) \
	SHRQ $32, R14; \
	XORQ R14, W; \
	ROLL $1, W

// STORE2(i, W0, W1): ring slots i, i+1 = w[i], w[i+1] (both zero-extended by their ROLL),
// with one 64-bit store. Issued in round i+2 just before that round's SCHED_EVEN loads, so
// both fall in one group of memory accesses; the slots held w[i-16], w[i-15], consumed by
// round i+1. The last is STORE2(70): w[70], w[71] are read as w[j-8] in rounds 78, 79, and
// later words only from their registers (as w[j-3]).
#define STORE2(i, W0, W1) \
	MOVQ W1, R14; \
	SHLQ $32, R14; \
	ORQ W0, R14; \
	MOVQ R14, (((i)&15)*4)(SP)

// CH, rounds 0-19: R9 = Ch(b,c,d) = (b&c)|(^b&d), as d ^ (b & (c^d)) without a NOT.
#define CH(b, c, d) \
	MOVQ c, R9; \
	XORQ d, R9; \
	ANDQ b, R9; \
	XORQ d, R9

// PAR, rounds 20-39 and 60-79: R9 = b^c^d.
#define PAR(b, c, d) \
	MOVQ b, R9; \
	XORQ c, R9; \
	XORQ d, R9

// MAJ, rounds 40-59: R9 = Maj(b,c,d) = (d&(b|c))|(b&c), the majority of each bit.
#define MAJ(b, c, d) \
	MOVQ b, R9; \
	ORQ c, R9; \
	ANDQ d, R9; \
	MOVQ b, R10; \
	ANDQ c, R10; \
	ORQ R10, R9

// MIX(a, b, e, K, W): e = e + K + w[i] + f + rol5(a), the new a; b = rol30(b), the new c.
#define MIX(a, b, e, K, W) \
	ROLL $30, b; \
	LEAQ K(e)(W*1), e; \
	ADDQ R9, e; \
	MOVQ a, R10; \
	ROLL $5, R10; \
	ADDQ R10, e

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
	LOAD2(0, R11, R12); CH(BX, CX, DX); MIX(AX, BX, R8, K0, R11)
	CH(AX, BX, CX); MIX(R8, AX, DX, K0, R12)
	LOAD2(2, R13, R11); CH(R8, AX, BX); MIX(DX, R8, CX, K0, R13)
	CH(DX, R8, AX); MIX(CX, DX, BX, K0, R11)
	LOAD2(4, R12, R13); CH(CX, DX, R8); MIX(BX, CX, AX, K0, R12)
	CH(BX, CX, DX); MIX(AX, BX, R8, K0, R13)
	LOAD2(6, R11, R12); CH(AX, BX, CX); MIX(R8, AX, DX, K0, R11)
	CH(R8, AX, BX); MIX(DX, R8, CX, K0, R12)
	LOAD2(8, R13, R11); CH(DX, R8, AX); MIX(CX, DX, BX, K0, R13)
	CH(CX, DX, R8); MIX(BX, CX, AX, K0, R11)
	LOAD2(10, R12, R13); CH(BX, CX, DX); MIX(AX, BX, R8, K0, R12)
	CH(AX, BX, CX); MIX(R8, AX, DX, K0, R13)
	LOAD2(12, R11, R12); CH(R8, AX, BX); MIX(DX, R8, CX, K0, R11)
	CH(DX, R8, AX); MIX(CX, DX, BX, K0, R12)
	LOAD2(14, R13, R11); CH(CX, DX, R8); MIX(BX, CX, AX, K0, R13)
	CH(BX, CX, DX); MIX(AX, BX, R8, K0, R11)
	SCHED_EVEN(16, R12); CH(AX, BX, CX); MIX(R8, AX, DX, K0, R12)
	SCHED_ODD(R13); CH(R8, AX, BX); MIX(DX, R8, CX, K0, R13)
	STORE2(16, R12, R13); SCHED_EVEN(18, R11); CH(DX, R8, AX); MIX(CX, DX, BX, K0, R11)
	SCHED_ODD(R12); CH(CX, DX, R8); MIX(BX, CX, AX, K0, R12)

	STORE2(18, R11, R12); SCHED_EVEN(20, R13); PAR(BX, CX, DX); MIX(AX, BX, R8, K1, R13)
	SCHED_ODD(R11); PAR(AX, BX, CX); MIX(R8, AX, DX, K1, R11)
	STORE2(20, R13, R11); SCHED_EVEN(22, R12); PAR(R8, AX, BX); MIX(DX, R8, CX, K1, R12)
	SCHED_ODD(R13); PAR(DX, R8, AX); MIX(CX, DX, BX, K1, R13)
	STORE2(22, R12, R13); SCHED_EVEN(24, R11); PAR(CX, DX, R8); MIX(BX, CX, AX, K1, R11)
	SCHED_ODD(R12); PAR(BX, CX, DX); MIX(AX, BX, R8, K1, R12)
	STORE2(24, R11, R12); SCHED_EVEN(26, R13); PAR(AX, BX, CX); MIX(R8, AX, DX, K1, R13)
	SCHED_ODD(R11); PAR(R8, AX, BX); MIX(DX, R8, CX, K1, R11)
	STORE2(26, R13, R11); SCHED_EVEN(28, R12); PAR(DX, R8, AX); MIX(CX, DX, BX, K1, R12)
	SCHED_ODD(R13); PAR(CX, DX, R8); MIX(BX, CX, AX, K1, R13)
	STORE2(28, R12, R13); SCHED_EVEN(30, R11); PAR(BX, CX, DX); MIX(AX, BX, R8, K1, R11)
	SCHED_ODD(R12); PAR(AX, BX, CX); MIX(R8, AX, DX, K1, R12)
	STORE2(30, R11, R12); SCHED_EVEN(32, R13); PAR(R8, AX, BX); MIX(DX, R8, CX, K1, R13)
	SCHED_ODD(R11); PAR(DX, R8, AX); MIX(CX, DX, BX, K1, R11)
	STORE2(32, R13, R11); SCHED_EVEN(34, R12); PAR(CX, DX, R8); MIX(BX, CX, AX, K1, R12)
	SCHED_ODD(R13); PAR(BX, CX, DX); MIX(AX, BX, R8, K1, R13)
	STORE2(34, R12, R13); SCHED_EVEN(36, R11); PAR(AX, BX, CX); MIX(R8, AX, DX, K1, R11)
	SCHED_ODD(R12); PAR(R8, AX, BX); MIX(DX, R8, CX, K1, R12)
	STORE2(36, R11, R12); SCHED_EVEN(38, R13); PAR(DX, R8, AX); MIX(CX, DX, BX, K1, R13)
	SCHED_ODD(R11); PAR(CX, DX, R8); MIX(BX, CX, AX, K1, R11)

	STORE2(38, R13, R11); SCHED_EVEN(40, R12); MAJ(BX, CX, DX); MIX(AX, BX, R8, K2, R12)
	SCHED_ODD(R13); MAJ(AX, BX, CX); MIX(R8, AX, DX, K2, R13)
	STORE2(40, R12, R13); SCHED_EVEN(42, R11); MAJ(R8, AX, BX); MIX(DX, R8, CX, K2, R11)
	SCHED_ODD(R12); MAJ(DX, R8, AX); MIX(CX, DX, BX, K2, R12)
	STORE2(42, R11, R12); SCHED_EVEN(44, R13); MAJ(CX, DX, R8); MIX(BX, CX, AX, K2, R13)
	SCHED_ODD(R11); MAJ(BX, CX, DX); MIX(AX, BX, R8, K2, R11)
	STORE2(44, R13, R11); SCHED_EVEN(46, R12); MAJ(AX, BX, CX); MIX(R8, AX, DX, K2, R12)
	SCHED_ODD(R13); MAJ(R8, AX, BX); MIX(DX, R8, CX, K2, R13)
	STORE2(46, R12, R13); SCHED_EVEN(48, R11); MAJ(DX, R8, AX); MIX(CX, DX, BX, K2, R11)
	SCHED_ODD(R12); MAJ(CX, DX, R8); MIX(BX, CX, AX, K2, R12)
	STORE2(48, R11, R12); SCHED_EVEN(50, R13); MAJ(BX, CX, DX); MIX(AX, BX, R8, K2, R13)
	SCHED_ODD(R11); MAJ(AX, BX, CX); MIX(R8, AX, DX, K2, R11)
	STORE2(50, R13, R11); SCHED_EVEN(52, R12); MAJ(R8, AX, BX); MIX(DX, R8, CX, K2, R12)
	SCHED_ODD(R13); MAJ(DX, R8, AX); MIX(CX, DX, BX, K2, R13)
	STORE2(52, R12, R13); SCHED_EVEN(54, R11); MAJ(CX, DX, R8); MIX(BX, CX, AX, K2, R11)
	SCHED_ODD(R12); MAJ(BX, CX, DX); MIX(AX, BX, R8, K2, R12)
	STORE2(54, R11, R12); SCHED_EVEN(56, R13); MAJ(AX, BX, CX); MIX(R8, AX, DX, K2, R13)
	SCHED_ODD(R11); MAJ(R8, AX, BX); MIX(DX, R8, CX, K2, R11)
	STORE2(56, R13, R11); SCHED_EVEN(58, R12); MAJ(DX, R8, AX); MIX(CX, DX, BX, K2, R12)
	SCHED_ODD(R13); MAJ(CX, DX, R8); MIX(BX, CX, AX, K2, R13)

	STORE2(58, R12, R13); SCHED_EVEN(60, R11); PAR(BX, CX, DX); MIX(AX, BX, R8, K3, R11)
	SCHED_ODD(R12); PAR(AX, BX, CX); MIX(R8, AX, DX, K3, R12)
	STORE2(60, R11, R12); SCHED_EVEN(62, R13); PAR(R8, AX, BX); MIX(DX, R8, CX, K3, R13)
	SCHED_ODD(R11); PAR(DX, R8, AX); MIX(CX, DX, BX, K3, R11)
	STORE2(62, R13, R11); SCHED_EVEN(64, R12); PAR(CX, DX, R8); MIX(BX, CX, AX, K3, R12)
	SCHED_ODD(R13); PAR(BX, CX, DX); MIX(AX, BX, R8, K3, R13)
	STORE2(64, R12, R13); SCHED_EVEN(66, R11); PAR(AX, BX, CX); MIX(R8, AX, DX, K3, R11)
	SCHED_ODD(R12); PAR(R8, AX, BX); MIX(DX, R8, CX, K3, R12)
	STORE2(66, R11, R12); SCHED_EVEN(68, R13); PAR(DX, R8, AX); MIX(CX, DX, BX, K3, R13)
	SCHED_ODD(R11); PAR(CX, DX, R8); MIX(BX, CX, AX, K3, R11)
	STORE2(68, R13, R11); SCHED_EVEN(70, R12); PAR(BX, CX, DX); MIX(AX, BX, R8, K3, R12)
	SCHED_ODD(R13); PAR(AX, BX, CX); MIX(R8, AX, DX, K3, R13)
	STORE2(70, R12, R13); SCHED_EVEN(72, R11); PAR(R8, AX, BX); MIX(DX, R8, CX, K3, R11)
	SCHED_ODD(R12); PAR(DX, R8, AX); MIX(CX, DX, BX, K3, R12)
	SCHED_EVEN(74, R13); PAR(CX, DX, R8); MIX(BX, CX, AX, K3, R13)
	SCHED_ODD(R11); PAR(BX, CX, DX); MIX(AX, BX, R8, K3, R11)
	SCHED_EVEN(76, R12); PAR(AX, BX, CX); MIX(R8, AX, DX, K3, R12)
	SCHED_ODD(R13); PAR(R8, AX, BX); MIX(DX, R8, CX, K3, R13)
	SCHED_EVEN(78, R11); PAR(DX, R8, AX); MIX(CX, DX, BX, K3, R11)
	SCHED_ODD(R12); PAR(CX, DX, R8); MIX(BX, CX, AX, K3, R12)

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
