// Scalar SHA-256 block function for amd64 CPUs without SHA-NI and AVX2 (FIPS 180-4, 6.2.2).
// Only base x86-64 instructions are used (no BMI, SSSE3 or later), so it runs on QEMU's
// qemu64 CPU and on Atoms; the code is written to execute few instructions per round, which
// is what counts under QEMU's TCG as well as on in-order cores.
//
// Registers:
//	R8..R15	the working variables a..h; instead of moving values between registers at the
//		end of each round, the next round's macro call names them rotated by one
//		(the register written as the new a is the one that held h, likewise e and d)
//	AX, BX	temporaries: W[i] arrives in AX, then Ch/Σ0 in AX, Σ1 in BX
//	CX, DX	Maj's carried term: one holds b^c from the previous round (its a^b), the other
//		receives this round's a^b; they swap roles every round (X, Y in the macros)
//	SI	the current block; DI the end of the last full block
// Frame: W[i] kept in a 16-word ring, 0(SP)..63(SP), slot i&15 (W[i] needs W[i-2],
// W[i-7], W[i-15] and W[i-16] only).
// The round constants K[i] are immediates (LEAL displacements), so no table is read.

#include "textflag.h"

// LOADW: AX = W[i] = big-endian word i of the block (rounds 0..15), saved in its ring slot for the schedule.
#define LOADW(i) \
	MOVL	((i)*4)(SI), AX; \
	BSWAPL	AX; \
	MOVL	AX, ((i)*4)(SP)

// SCHEDW: AX = W[i] = σ1(W[i-2]) + W[i-7] + σ0(W[i-15]) + W[i-16] (rounds 16..63), overwriting W[i-16]'s slot.
// σ1(x) = ror17(x)^ror19(x)^(x>>10) is computed as ror17(ror2(x)^x)^(x>>10), and
// σ0(x) = ror7(x)^ror18(x)^(x>>3) as ror7(ror11(x)^x)^(x>>3): one copy of x each instead of two.
// X is free here: the a^b it held two rounds ago is dead until this round's Maj writes it.
#define SCHEDW(i, X) \
	MOVL	((((i)-2)&15)*4)(SP), AX; \
	MOVL	AX, BX; \
	RORL	$2, AX; \
	XORL	BX, AX; \
	RORL	$17, AX; \
	SHRL	$10, BX; \
	XORL	BX, AX; \
	ADDL	((((i)-7)&15)*4)(SP), AX; \
	ADDL	((((i)-16)&15)*4)(SP), AX; \
	MOVL	((((i)-15)&15)*4)(SP), BX; \
	MOVL	BX, X; \
	RORL	$11, BX; \
	XORL	X, BX; \
	RORL	$7, BX; \
	SHRL	$3, X; \
	XORL	X, BX; \
	ADDL	BX, AX; \
	MOVL	AX, ((((i)-16)&15)*4)(SP)

// ROUND: one round with W[i] in AX: T1 = h + Σ1(e) + Ch(e,f,g) + K + W, T2 = Σ0(a) + Maj(a,b,c);
// d += T1 makes the next e, and h (accumulating T1 + T2) becomes the next a.
//	h += K + W in one LEAL (3-operand add, K as the displacement, flags untouched);
//	Ch(e,f,g) = ((f^g)&e)^g, which needs no NOT (ANDN is BMI1);
//	Σ1(e) = ror6(e)^ror11(e)^ror25(e) = ror6(ror5(ror14(e)^e)^e): one temporary, 6 instructions;
//	Σ0(a) = ror2(a)^ror13(a)^ror22(a) = ror2(ror11(ror9(a)^a)^a), likewise;
//	Maj(a,b,c) = b ^ ((a^b)&(b^c)), where b^c is Y, the previous round's a^b, and this
//	round's a^b goes to X for the next: 4 instructions instead of 5 with two temporaries.
#define ROUND(k, a, b, c, d, e, f, g, h, X, Y) \
	LEAL	k(h)(AX*1), h; \
	MOVL	f, AX; \
	XORL	g, AX; \
	ANDL	e, AX; \
	XORL	g, AX; \
	MOVL	e, BX; \
	RORL	$14, BX; \
	XORL	e, BX; \
	RORL	$5, BX; \
	XORL	e, BX; \
	RORL	$6, BX; \
	ADDL	AX, h; \
	ADDL	BX, h; \
	ADDL	h, d; \
	MOVL	a, AX; \
	RORL	$9, AX; \
	XORL	a, AX; \
	RORL	$11, AX; \
	XORL	a, AX; \
	RORL	$2, AX; \
	ADDL	AX, h; \
	MOVL	a, X; \
	XORL	b, X; \
	ANDL	X, Y; \
	XORL	b, Y; \
	ADDL	Y, h

// ROUND0: a round 0..15, W[i] straight from the block.
#define ROUND0(i, k, a, b, c, d, e, f, g, h, X, Y) \
	LOADW(i); \
	ROUND(k, a, b, c, d, e, f, g, h, X, Y)

// ROUND1: a round 16..63, W[i] from the message schedule.
#define ROUND1(i, k, a, b, c, d, e, f, g, h, X, Y) \
	SCHEDW(i, X); \
	ROUND(k, a, b, c, d, e, f, g, h, X, Y)

// func blockSHA256(h *[8]uint32, p []byte)
TEXT ·blockSHA256(SB), NOSPLIT, $64-32
	MOVQ	p_len+16(FP), DI
	ANDQ	$~63, DI              // whole blocks only; none: nothing to do
	JZ	done
	MOVQ	p_base+8(FP), SI
	ADDQ	SI, DI
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
	MOVL	R9, DX                // round 0's Y = b^c
	XORL	R10, DX

	ROUND0(0, 0x428a2f98, R8, R9, R10, R11, R12, R13, R14, R15, CX, DX)
	ROUND0(1, 0x71374491, R15, R8, R9, R10, R11, R12, R13, R14, DX, CX)
	ROUND0(2, 0xb5c0fbcf, R14, R15, R8, R9, R10, R11, R12, R13, CX, DX)
	ROUND0(3, 0xe9b5dba5, R13, R14, R15, R8, R9, R10, R11, R12, DX, CX)
	ROUND0(4, 0x3956c25b, R12, R13, R14, R15, R8, R9, R10, R11, CX, DX)
	ROUND0(5, 0x59f111f1, R11, R12, R13, R14, R15, R8, R9, R10, DX, CX)
	ROUND0(6, 0x923f82a4, R10, R11, R12, R13, R14, R15, R8, R9, CX, DX)
	ROUND0(7, 0xab1c5ed5, R9, R10, R11, R12, R13, R14, R15, R8, DX, CX)
	ROUND0(8, 0xd807aa98, R8, R9, R10, R11, R12, R13, R14, R15, CX, DX)
	ROUND0(9, 0x12835b01, R15, R8, R9, R10, R11, R12, R13, R14, DX, CX)
	ROUND0(10, 0x243185be, R14, R15, R8, R9, R10, R11, R12, R13, CX, DX)
	ROUND0(11, 0x550c7dc3, R13, R14, R15, R8, R9, R10, R11, R12, DX, CX)
	ROUND0(12, 0x72be5d74, R12, R13, R14, R15, R8, R9, R10, R11, CX, DX)
	ROUND0(13, 0x80deb1fe, R11, R12, R13, R14, R15, R8, R9, R10, DX, CX)
	ROUND0(14, 0x9bdc06a7, R10, R11, R12, R13, R14, R15, R8, R9, CX, DX)
	ROUND0(15, 0xc19bf174, R9, R10, R11, R12, R13, R14, R15, R8, DX, CX)
	ROUND1(16, 0xe49b69c1, R8, R9, R10, R11, R12, R13, R14, R15, CX, DX)
	ROUND1(17, 0xefbe4786, R15, R8, R9, R10, R11, R12, R13, R14, DX, CX)
	ROUND1(18, 0x0fc19dc6, R14, R15, R8, R9, R10, R11, R12, R13, CX, DX)
	ROUND1(19, 0x240ca1cc, R13, R14, R15, R8, R9, R10, R11, R12, DX, CX)
	ROUND1(20, 0x2de92c6f, R12, R13, R14, R15, R8, R9, R10, R11, CX, DX)
	ROUND1(21, 0x4a7484aa, R11, R12, R13, R14, R15, R8, R9, R10, DX, CX)
	ROUND1(22, 0x5cb0a9dc, R10, R11, R12, R13, R14, R15, R8, R9, CX, DX)
	ROUND1(23, 0x76f988da, R9, R10, R11, R12, R13, R14, R15, R8, DX, CX)
	ROUND1(24, 0x983e5152, R8, R9, R10, R11, R12, R13, R14, R15, CX, DX)
	ROUND1(25, 0xa831c66d, R15, R8, R9, R10, R11, R12, R13, R14, DX, CX)
	ROUND1(26, 0xb00327c8, R14, R15, R8, R9, R10, R11, R12, R13, CX, DX)
	ROUND1(27, 0xbf597fc7, R13, R14, R15, R8, R9, R10, R11, R12, DX, CX)
	ROUND1(28, 0xc6e00bf3, R12, R13, R14, R15, R8, R9, R10, R11, CX, DX)
	ROUND1(29, 0xd5a79147, R11, R12, R13, R14, R15, R8, R9, R10, DX, CX)
	ROUND1(30, 0x06ca6351, R10, R11, R12, R13, R14, R15, R8, R9, CX, DX)
	ROUND1(31, 0x14292967, R9, R10, R11, R12, R13, R14, R15, R8, DX, CX)
	ROUND1(32, 0x27b70a85, R8, R9, R10, R11, R12, R13, R14, R15, CX, DX)
	ROUND1(33, 0x2e1b2138, R15, R8, R9, R10, R11, R12, R13, R14, DX, CX)
	ROUND1(34, 0x4d2c6dfc, R14, R15, R8, R9, R10, R11, R12, R13, CX, DX)
	ROUND1(35, 0x53380d13, R13, R14, R15, R8, R9, R10, R11, R12, DX, CX)
	ROUND1(36, 0x650a7354, R12, R13, R14, R15, R8, R9, R10, R11, CX, DX)
	ROUND1(37, 0x766a0abb, R11, R12, R13, R14, R15, R8, R9, R10, DX, CX)
	ROUND1(38, 0x81c2c92e, R10, R11, R12, R13, R14, R15, R8, R9, CX, DX)
	ROUND1(39, 0x92722c85, R9, R10, R11, R12, R13, R14, R15, R8, DX, CX)
	ROUND1(40, 0xa2bfe8a1, R8, R9, R10, R11, R12, R13, R14, R15, CX, DX)
	ROUND1(41, 0xa81a664b, R15, R8, R9, R10, R11, R12, R13, R14, DX, CX)
	ROUND1(42, 0xc24b8b70, R14, R15, R8, R9, R10, R11, R12, R13, CX, DX)
	ROUND1(43, 0xc76c51a3, R13, R14, R15, R8, R9, R10, R11, R12, DX, CX)
	ROUND1(44, 0xd192e819, R12, R13, R14, R15, R8, R9, R10, R11, CX, DX)
	ROUND1(45, 0xd6990624, R11, R12, R13, R14, R15, R8, R9, R10, DX, CX)
	ROUND1(46, 0xf40e3585, R10, R11, R12, R13, R14, R15, R8, R9, CX, DX)
	ROUND1(47, 0x106aa070, R9, R10, R11, R12, R13, R14, R15, R8, DX, CX)
	ROUND1(48, 0x19a4c116, R8, R9, R10, R11, R12, R13, R14, R15, CX, DX)
	ROUND1(49, 0x1e376c08, R15, R8, R9, R10, R11, R12, R13, R14, DX, CX)
	ROUND1(50, 0x2748774c, R14, R15, R8, R9, R10, R11, R12, R13, CX, DX)
	ROUND1(51, 0x34b0bcb5, R13, R14, R15, R8, R9, R10, R11, R12, DX, CX)
	ROUND1(52, 0x391c0cb3, R12, R13, R14, R15, R8, R9, R10, R11, CX, DX)
	ROUND1(53, 0x4ed8aa4a, R11, R12, R13, R14, R15, R8, R9, R10, DX, CX)
	ROUND1(54, 0x5b9cca4f, R10, R11, R12, R13, R14, R15, R8, R9, CX, DX)
	ROUND1(55, 0x682e6ff3, R9, R10, R11, R12, R13, R14, R15, R8, DX, CX)
	ROUND1(56, 0x748f82ee, R8, R9, R10, R11, R12, R13, R14, R15, CX, DX)
	ROUND1(57, 0x78a5636f, R15, R8, R9, R10, R11, R12, R13, R14, DX, CX)
	ROUND1(58, 0x84c87814, R14, R15, R8, R9, R10, R11, R12, R13, CX, DX)
	ROUND1(59, 0x8cc70208, R13, R14, R15, R8, R9, R10, R11, R12, DX, CX)
	ROUND1(60, 0x90befffa, R12, R13, R14, R15, R8, R9, R10, R11, CX, DX)
	ROUND1(61, 0xa4506ceb, R11, R12, R13, R14, R15, R8, R9, R10, DX, CX)
	ROUND1(62, 0xbef9a3f7, R10, R11, R12, R13, R14, R15, R8, R9, CX, DX)
	ROUND1(63, 0xc67178f2, R9, R10, R11, R12, R13, R14, R15, R8, DX, CX)

	// After 64 rounds the registers name a..h in their original order again: add the
	// block's result into the state and keep the sum in registers for the next block.
	MOVQ	h+0(FP), AX
	ADDL	(0*4)(AX), R8
	MOVL	R8, (0*4)(AX)
	ADDL	(1*4)(AX), R9
	MOVL	R9, (1*4)(AX)
	ADDL	(2*4)(AX), R10
	MOVL	R10, (2*4)(AX)
	ADDL	(3*4)(AX), R11
	MOVL	R11, (3*4)(AX)
	ADDL	(4*4)(AX), R12
	MOVL	R12, (4*4)(AX)
	ADDL	(5*4)(AX), R13
	MOVL	R13, (5*4)(AX)
	ADDL	(6*4)(AX), R14
	MOVL	R14, (6*4)(AX)
	ADDL	(7*4)(AX), R15
	MOVL	R15, (7*4)(AX)

	ADDQ	$64, SI
	CMPQ	SI, DI
	JB	loop

done:
	RET
