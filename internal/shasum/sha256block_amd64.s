// Scalar SHA-256 block function for amd64 CPUs without SHA-NI and AVX2 (FIPS 180-4, 6.2.2).
// Only base x86-64 instructions are used (no BMI, SSSE3 or later), so it runs on QEMU's
// qemu64 CPU and on Atoms. It is written for few instructions per round and few, grouped
// memory accesses: under QEMU's TCG each guest load or store first writes back to memory
// the guest registers changed since the previous one, so one 8-byte access instead of two
// 4-byte ones, and loads issued back to back, save more than the instructions they take.
//
// Registers:
//	R8..R15	the working variables a..h; instead of moving values between registers at the
//		end of each round, the next round's macro call names them rotated by one
//		(the register written as the new a is the one that held h, likewise e and d)
//	AX, BX	temporaries: Ch and Σ0 in AX, Σ1 in BX; W[i] in AX from SCHEDW2
//	CX, DX	Maj's carried term: one holds b^c (the previous round's a^b), the other
//		receives this round's a^b; they swap roles every round (X, Y in the macros)
//	DI	rounds 0..15: W[i] | W[i+1]<<32 from BLOCKW2 for rounds i (even) and, shifted
//		down, i+1
//	SI	the current block in rounds 0..15; in rounds 16..63 W[i+1] from SCHEDW2 for
//		round i+1, and a temporary
// Frame: W[0..63] at 0(SP)..255(SP), flat so that W[j], W[j+1] are one 8-byte load or
// store; the end of the last full block at 256(SP); the next block at 264(SP).
//
// Arithmetic: only the low 32 bits of a register are meaningful. Additions, XOR, AND, OR and
// moves between registers use the 64-bit forms (ADDQ, LEAQ, ...), whose low 32 bits do not
// depend on the high ones (under TCG a 32-bit add costs an extra zero-extension). What does
// depend on the high bits is 32-bit: the rotations (RORL), the right shifts (SHRL), the
// 4-byte loads and stores, and the final ADDL into h, which also clears the high halves.
// The round constants K[i] are LEAQ displacements, sign-extended from 32 bits (that changes
// only the high half), so no table is read.

#include "textflag.h"

// sx32: k as the signed 32-bit displacement with the same low 32 bits (the assembler rejects larger LEAQ offsets).
#define sx32(k) ((((k)^0x80000000)-0x80000000))

// BLOCKW2: DI = W[i] | W[i+1]<<32, big-endian words i, i+1 of the block (i even, 0..14), with one load; saved to the frame.
// BSWAPQ of the 8 bytes gives W[i]<<32 | W[i+1]; RORQ $32 swaps the halves into memory order.
#define BLOCKW2(i) \
	MOVQ	((i)*4)(SI), DI; \
	BSWAPQ	DI; \
	RORQ	$32, DI; \
	MOVQ	DI, ((i)*4)(SP)

// SIGMA1: r = σ1(r) = ror17(r)^ror19(r)^(r>>10), as ror17(ror2(r)^r)^(r>>10): one copy (t) instead of two.
#define SIGMA1(r, t) \
	MOVQ	r, t; \
	RORL	$2, r; \
	XORQ	t, r; \
	RORL	$17, r; \
	SHRL	$10, t; \
	XORQ	t, r

// SIGMA0: r = σ0(r) = ror7(r)^ror18(r)^(r>>3), as ror7(ror11(r)^r)^(r>>3): one copy (t) instead of two.
#define SIGMA0(r, t) \
	MOVQ	r, t; \
	RORL	$11, r; \
	XORQ	t, r; \
	RORL	$7, r; \
	SHRL	$3, t; \
	XORQ	t, r

// SCHEDW2: AX = W[i], SI = W[i+1] (i even, 16..62), W[j] = σ1(W[j-2]) + W[j-7] + σ0(W[j-15]) + W[j-16]; saved to the frame.
// W[i+1] does not need W[i], so the pairs (W[i-16], W[i-15]), (W[i-7], W[i-6]) and
// (W[i-2], W[i-1]) are one load each, all four loads come first, and the two results are
// packed into one store (which the next SCHEDW2's 8-byte load gets forwarded from; it would
// not be from two 4-byte stores): 5 memory accesses for two words instead of 10.
// X is free here: the a^b it held two rounds ago is dead until round i's Maj writes it.
#define SCHEDW2(i, X) \
	MOVQ	(((i)-16)*4)(SP), AX; \
	MOVQ	(((i)-7)*4)(SP), BX; \
	MOVQ	(((i)-2)*4)(SP), DI; \
	MOVL	(((i)-14)*4)(SP), SI; \
	SIGMA0(SI, X); \
	MOVQ	AX, X; \
	SHRQ	$32, X; \
	ADDQ	BX, AX; \
	SHRQ	$32, BX; \
	ADDQ	BX, SI; \
	ADDQ	X, SI; \
	SIGMA0(X, BX); \
	ADDQ	X, AX; \
	MOVQ	DI, X; \
	SHRQ	$32, X; \
	SIGMA1(DI, BX); \
	ADDQ	DI, AX; \
	SIGMA1(X, BX); \
	ADDQ	X, SI; \
	MOVL	AX, BX; \
	MOVQ	SI, X; \
	SHLQ	$32, X; \
	ORQ	X, BX; \
	MOVQ	BX, ((i)*4)(SP)

// ROUND: one round with W[i] in the low half of w: T1 = h + Σ1(e) + Ch(e,f,g) + K + W, T2 = Σ0(a) + Maj(a,b,c);
// d += T1 makes the next e, and h (accumulating T1 + T2) becomes the next a.
//	h += K + W in one LEAQ (3-operand add, K as the displacement, flags untouched);
//	Ch(e,f,g) = ((f^g)&e)^g, which needs no NOT (ANDN is BMI1);
//	Σ1(e) = ror6(e)^ror11(e)^ror25(e) = ror6(ror5(ror14(e)^e)^e): one temporary, 6 instructions;
//	Σ0(a) = ror2(a)^ror13(a)^ror22(a) = ror2(ror11(ror9(a)^a)^a), likewise;
//	Maj(a,b,c) = b ^ ((a^b)&(b^c)), where b^c is Y, the previous round's a^b, and this
//	round's a^b goes to X for the next: 4 instructions instead of 5 with two temporaries.
#define ROUND(k, a, b, c, d, e, f, g, h, w, X, Y) \
	LEAQ	sx32(k)(h)(w*1), h; \
	MOVQ	f, AX; \
	XORQ	g, AX; \
	ANDQ	e, AX; \
	XORQ	g, AX; \
	MOVQ	e, BX; \
	RORL	$14, BX; \
	XORQ	e, BX; \
	RORL	$5, BX; \
	XORQ	e, BX; \
	RORL	$6, BX; \
	ADDQ	AX, h; \
	ADDQ	BX, h; \
	ADDQ	h, d; \
	MOVQ	a, AX; \
	RORL	$9, AX; \
	XORQ	a, AX; \
	RORL	$11, AX; \
	XORQ	a, AX; \
	RORL	$2, AX; \
	ADDQ	AX, h; \
	MOVQ	a, X; \
	XORQ	b, X; \
	ANDQ	X, Y; \
	XORQ	b, Y; \
	ADDQ	Y, h

// func blockSHA256(h *[8]uint32, p []byte)
TEXT ·blockSHA256(SB), NOSPLIT, $272-32
	MOVQ	p_len+16(FP), DI
	ANDQ	$~63, DI              // whole blocks only; none: nothing to do
	JZ	done
	MOVQ	p_base+8(FP), SI
	ADDQ	SI, DI
	MOVQ	DI, 256(SP)           // end of the last block
	MOVQ	h+0(FP), AX
	MOVL	(0*4)(AX), R8
	MOVL	(1*4)(AX), R9
	MOVL	(2*4)(AX), R10
	MOVL	(3*4)(AX), R11
	MOVL	(4*4)(AX), R12
	MOVL	(5*4)(AX), R13
	MOVL	(6*4)(AX), R14
	MOVL	(7*4)(AX), R15

loop:
	MOVQ	R9, DX                // round 0's Y = b^c
	XORQ	R10, DX

	// Rounds 0..15: W from the block, two words per load.
	BLOCKW2(0)
	ROUND(0x428a2f98, R8, R9, R10, R11, R12, R13, R14, R15, DI, CX, DX)
	SHRQ	$32, DI
	ROUND(0x71374491, R15, R8, R9, R10, R11, R12, R13, R14, DI, DX, CX)
	BLOCKW2(2)
	ROUND(0xb5c0fbcf, R14, R15, R8, R9, R10, R11, R12, R13, DI, CX, DX)
	SHRQ	$32, DI
	ROUND(0xe9b5dba5, R13, R14, R15, R8, R9, R10, R11, R12, DI, DX, CX)
	BLOCKW2(4)
	ROUND(0x3956c25b, R12, R13, R14, R15, R8, R9, R10, R11, DI, CX, DX)
	SHRQ	$32, DI
	ROUND(0x59f111f1, R11, R12, R13, R14, R15, R8, R9, R10, DI, DX, CX)
	BLOCKW2(6)
	ROUND(0x923f82a4, R10, R11, R12, R13, R14, R15, R8, R9, DI, CX, DX)
	SHRQ	$32, DI
	ROUND(0xab1c5ed5, R9, R10, R11, R12, R13, R14, R15, R8, DI, DX, CX)
	BLOCKW2(8)
	ROUND(0xd807aa98, R8, R9, R10, R11, R12, R13, R14, R15, DI, CX, DX)
	SHRQ	$32, DI
	ROUND(0x12835b01, R15, R8, R9, R10, R11, R12, R13, R14, DI, DX, CX)
	BLOCKW2(10)
	ROUND(0x243185be, R14, R15, R8, R9, R10, R11, R12, R13, DI, CX, DX)
	SHRQ	$32, DI
	ROUND(0x550c7dc3, R13, R14, R15, R8, R9, R10, R11, R12, DI, DX, CX)
	BLOCKW2(12)
	ROUND(0x72be5d74, R12, R13, R14, R15, R8, R9, R10, R11, DI, CX, DX)
	SHRQ	$32, DI
	ROUND(0x80deb1fe, R11, R12, R13, R14, R15, R8, R9, R10, DI, DX, CX)
	BLOCKW2(14)
	ROUND(0x9bdc06a7, R10, R11, R12, R13, R14, R15, R8, R9, DI, CX, DX)
	SHRQ	$32, DI
	ROUND(0xc19bf174, R9, R10, R11, R12, R13, R14, R15, R8, DI, DX, CX)

	// Rounds 16..63: W from the schedule. SI is free for it once the next block's
	// address is saved.
	ADDQ	$64, SI
	MOVQ	SI, 264(SP)
	SCHEDW2(16, CX)
	ROUND(0xe49b69c1, R8, R9, R10, R11, R12, R13, R14, R15, AX, CX, DX)
	ROUND(0xefbe4786, R15, R8, R9, R10, R11, R12, R13, R14, SI, DX, CX)
	SCHEDW2(18, CX)
	ROUND(0x0fc19dc6, R14, R15, R8, R9, R10, R11, R12, R13, AX, CX, DX)
	ROUND(0x240ca1cc, R13, R14, R15, R8, R9, R10, R11, R12, SI, DX, CX)
	SCHEDW2(20, CX)
	ROUND(0x2de92c6f, R12, R13, R14, R15, R8, R9, R10, R11, AX, CX, DX)
	ROUND(0x4a7484aa, R11, R12, R13, R14, R15, R8, R9, R10, SI, DX, CX)
	SCHEDW2(22, CX)
	ROUND(0x5cb0a9dc, R10, R11, R12, R13, R14, R15, R8, R9, AX, CX, DX)
	ROUND(0x76f988da, R9, R10, R11, R12, R13, R14, R15, R8, SI, DX, CX)
	SCHEDW2(24, CX)
	ROUND(0x983e5152, R8, R9, R10, R11, R12, R13, R14, R15, AX, CX, DX)
	ROUND(0xa831c66d, R15, R8, R9, R10, R11, R12, R13, R14, SI, DX, CX)
	SCHEDW2(26, CX)
	ROUND(0xb00327c8, R14, R15, R8, R9, R10, R11, R12, R13, AX, CX, DX)
	ROUND(0xbf597fc7, R13, R14, R15, R8, R9, R10, R11, R12, SI, DX, CX)
	SCHEDW2(28, CX)
	ROUND(0xc6e00bf3, R12, R13, R14, R15, R8, R9, R10, R11, AX, CX, DX)
	ROUND(0xd5a79147, R11, R12, R13, R14, R15, R8, R9, R10, SI, DX, CX)
	SCHEDW2(30, CX)
	ROUND(0x06ca6351, R10, R11, R12, R13, R14, R15, R8, R9, AX, CX, DX)
	ROUND(0x14292967, R9, R10, R11, R12, R13, R14, R15, R8, SI, DX, CX)
	SCHEDW2(32, CX)
	ROUND(0x27b70a85, R8, R9, R10, R11, R12, R13, R14, R15, AX, CX, DX)
	ROUND(0x2e1b2138, R15, R8, R9, R10, R11, R12, R13, R14, SI, DX, CX)
	SCHEDW2(34, CX)
	ROUND(0x4d2c6dfc, R14, R15, R8, R9, R10, R11, R12, R13, AX, CX, DX)
	ROUND(0x53380d13, R13, R14, R15, R8, R9, R10, R11, R12, SI, DX, CX)
	SCHEDW2(36, CX)
	ROUND(0x650a7354, R12, R13, R14, R15, R8, R9, R10, R11, AX, CX, DX)
	ROUND(0x766a0abb, R11, R12, R13, R14, R15, R8, R9, R10, SI, DX, CX)
	SCHEDW2(38, CX)
	ROUND(0x81c2c92e, R10, R11, R12, R13, R14, R15, R8, R9, AX, CX, DX)
	ROUND(0x92722c85, R9, R10, R11, R12, R13, R14, R15, R8, SI, DX, CX)
	SCHEDW2(40, CX)
	ROUND(0xa2bfe8a1, R8, R9, R10, R11, R12, R13, R14, R15, AX, CX, DX)
	ROUND(0xa81a664b, R15, R8, R9, R10, R11, R12, R13, R14, SI, DX, CX)
	SCHEDW2(42, CX)
	ROUND(0xc24b8b70, R14, R15, R8, R9, R10, R11, R12, R13, AX, CX, DX)
	ROUND(0xc76c51a3, R13, R14, R15, R8, R9, R10, R11, R12, SI, DX, CX)
	SCHEDW2(44, CX)
	ROUND(0xd192e819, R12, R13, R14, R15, R8, R9, R10, R11, AX, CX, DX)
	ROUND(0xd6990624, R11, R12, R13, R14, R15, R8, R9, R10, SI, DX, CX)
	SCHEDW2(46, CX)
	ROUND(0xf40e3585, R10, R11, R12, R13, R14, R15, R8, R9, AX, CX, DX)
	ROUND(0x106aa070, R9, R10, R11, R12, R13, R14, R15, R8, SI, DX, CX)
	SCHEDW2(48, CX)
	ROUND(0x19a4c116, R8, R9, R10, R11, R12, R13, R14, R15, AX, CX, DX)
	ROUND(0x1e376c08, R15, R8, R9, R10, R11, R12, R13, R14, SI, DX, CX)
	SCHEDW2(50, CX)
	ROUND(0x2748774c, R14, R15, R8, R9, R10, R11, R12, R13, AX, CX, DX)
	ROUND(0x34b0bcb5, R13, R14, R15, R8, R9, R10, R11, R12, SI, DX, CX)
	SCHEDW2(52, CX)
	ROUND(0x391c0cb3, R12, R13, R14, R15, R8, R9, R10, R11, AX, CX, DX)
	ROUND(0x4ed8aa4a, R11, R12, R13, R14, R15, R8, R9, R10, SI, DX, CX)
	SCHEDW2(54, CX)
	ROUND(0x5b9cca4f, R10, R11, R12, R13, R14, R15, R8, R9, AX, CX, DX)
	ROUND(0x682e6ff3, R9, R10, R11, R12, R13, R14, R15, R8, SI, DX, CX)
	SCHEDW2(56, CX)
	ROUND(0x748f82ee, R8, R9, R10, R11, R12, R13, R14, R15, AX, CX, DX)
	ROUND(0x78a5636f, R15, R8, R9, R10, R11, R12, R13, R14, SI, DX, CX)
	SCHEDW2(58, CX)
	ROUND(0x84c87814, R14, R15, R8, R9, R10, R11, R12, R13, AX, CX, DX)
	ROUND(0x8cc70208, R13, R14, R15, R8, R9, R10, R11, R12, SI, DX, CX)
	SCHEDW2(60, CX)
	ROUND(0x90befffa, R12, R13, R14, R15, R8, R9, R10, R11, AX, CX, DX)
	ROUND(0xa4506ceb, R11, R12, R13, R14, R15, R8, R9, R10, SI, DX, CX)
	SCHEDW2(62, CX)
	ROUND(0xbef9a3f7, R10, R11, R12, R13, R14, R15, R8, R9, AX, CX, DX)
	ROUND(0xc67178f2, R9, R10, R11, R12, R13, R14, R15, R8, SI, DX, CX)

	// After 64 rounds the registers name a..h in their original order again: add the
	// block's result into the state and keep the sums in registers for the next block.
	MOVQ	h+0(FP), AX
	ADDL	(0*4)(AX), R8
	ADDL	(1*4)(AX), R9
	ADDL	(2*4)(AX), R10
	ADDL	(3*4)(AX), R11
	ADDL	(4*4)(AX), R12
	ADDL	(5*4)(AX), R13
	ADDL	(6*4)(AX), R14
	ADDL	(7*4)(AX), R15
	MOVL	R8, (0*4)(AX)
	MOVL	R9, (1*4)(AX)
	MOVL	R10, (2*4)(AX)
	MOVL	R11, (3*4)(AX)
	MOVL	R12, (4*4)(AX)
	MOVL	R13, (5*4)(AX)
	MOVL	R14, (6*4)(AX)
	MOVL	R15, (7*4)(AX)

	MOVQ	264(SP), SI
	CMPQ	SI, 256(SP)
	JB	loop

done:
	RET
