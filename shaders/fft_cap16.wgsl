// Workgroup-memory size of module fft: lines of up to 1024 points, twice (16 KiB, the WebGPU default).
const FFT_CAP: u32 = 1024u;
const FFT_CAP2: u32 = 2048u;
