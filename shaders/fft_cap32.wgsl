// Workgroup-memory size of module fft_cap32: lines of up to 2048 points, twice (32 KiB).
const FFT_CAP: u32 = 2048u;
const FFT_CAP2: u32 = 4096u;
