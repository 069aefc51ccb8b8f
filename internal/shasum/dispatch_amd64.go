package shasum

import "golang.org/x/sys/cpu"

// useScalar is fixed at start-up from the CPU's features: the standard library's SHA-NI and
// AVX2 paths (the conditions it uses itself) beat scalar code; its generic fallback does not.
var useScalar = !stdAccelerated(cpu.X86.HasAVX, cpu.X86.HasAVX2, cpu.X86.HasBMI1, cpu.X86.HasBMI2,
	cpu.X86.HasSSSE3, cpu.X86.HasSSE41, hasSHANI())

func stdAccelerated(avx, avx2, bmi1, bmi2, ssse3, sse41, sha bool) bool {
	shani := avx && sha && sse41 && ssse3
	vec := avx && avx2 && bmi1 && bmi2
	return shani || vec
}

// hasSHANI reports CPUID.(EAX=7,ECX=0):EBX bit 29, which golang.org/x/sys/cpu does not expose.
func hasSHANI() bool {
	if max, _, _, _ := cpuid(0, 0); max < 7 {
		return false
	}
	_, ebx, _, _ := cpuid(7, 0)
	return ebx&(1<<29) != 0
}

func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
