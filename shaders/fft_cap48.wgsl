// Workgroup-memory size of module fft_cap48: lines of up to 3072 points, twice (48 KiB).
const FFT_CAP: u32 = 3072u;
const FFT_CAP2: u32 = 6144u;
