// Loads of the plain GEMV (gemv.wgsl): x and W as they are, ROWS output rows per workgroup.

fn group_rows() -> u32 {
    return ROWS;
}

fn row_in_group(r: u32) -> u32 {
    return r;
}

fn ld_x4(i: u32) -> vec4<f32> {
    return x4[i];
}

fn ld_x(i: u32) -> f32 {
    return x[i];
}

fn ld_w4(up: bool, i: u32) -> vec4<f32> {
    return w4[i];
}

fn ld_w(up: bool, i: u32) -> f32 {
    return w[i];
}

fn ld_wq(up: bool, i: u32) -> vec4<u32> {
    return wq[i];
}

fn ld_plane(up: bool, word: u32) -> f32 {
    return plane(word);
}
