//! One error type for the whole crate. Every message is a sentence for a person: it names the
//! thing (op, tensor, limit, file) and what was expected.

/// Everything that can go wrong in webformer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU adapter matched; the message says what to install or set.
    #[error("no GPU adapter found{detail}; {hint}")]
    NoAdapter { detail: String, hint: &'static str },
    /// The adapter refused the device request.
    #[error("could not open the GPU device on adapter '{adapter}': {reason}")]
    Device { adapter: String, reason: String },
    /// A setting (environment variable, option) has a value we do not understand.
    #[error("{name}={value} is not understood; expected one of {expected}")]
    Setting { name: String, value: String, expected: String },
    /// A graph node was given inputs of the wrong shape or dtype.
    #[error("{op}: {detail}")]
    Shape { op: String, detail: String },
    /// A node id that does not belong to this graph (or does not exist yet).
    #[error("{op}: input node #{id} does not exist in this graph (nodes can only use nodes added before them, so graphs cannot contain cycles)")]
    UnknownNode { op: String, id: usize },
    /// A run was started without a value for one of the graph's inputs.
    #[error("graph input '{name}' was not given a value before run()")]
    MissingInput { name: String },
    /// No input of that name exists.
    #[error("graph has no input named '{name}'; its inputs are: {known}")]
    UnknownInput { name: String, known: String },
    /// Input data of the wrong length.
    #[error("graph input '{name}' needs {expected} elements (shape {shape:?}) but was given {got}")]
    InputSize { name: String, shape: Vec<usize>, expected: usize, got: usize },
    /// Host data whose type does not match the tensor's dtype.
    #[error("{what}: expected dtype {expected}, got {got}")]
    DType { what: String, expected: String, got: String },
    /// A device limit would be exceeded.
    #[error("{what} needs {needed} but the device allows at most {max} ({limit})")]
    Limit { what: String, needed: u64, max: u64, limit: &'static str },
    /// The GPU device is gone (driver reset, GPU removed, or `Context::destroy`). Work on this
    /// context cannot continue; a new `Context` (and executors made from it) can.
    #[error("the GPU device on '{adapter}' was lost while {during} ({reason}); open a new Context to continue")]
    DeviceLost { adapter: String, during: String, reason: String },
    /// The GPU reported a validation or out-of-memory error.
    #[error("GPU error while {during}: {message}")]
    Gpu { during: String, message: String },
    /// Mapping a buffer for readback failed.
    #[error("reading '{what}' back from the GPU failed: {reason}")]
    Readback { what: String, reason: String },
    /// A feature the adapter does not have.
    #[error("{what} needs the adapter feature {feature}, which '{adapter}' does not have")]
    Feature { what: String, feature: &'static str, adapter: String },
    /// Runtime slot out of range.
    #[error("runtime slot {slot} is out of range; a graph has {max} runtime slots")]
    RuntimeSlot { slot: usize, max: usize },
    /// A model file (GGUF, safetensors, config.json, tokenizer.json) is unreadable or not what
    /// was expected; `file` names it, `detail` says what is wrong.
    #[error("{file}: {detail}")]
    Model { file: String, detail: String },
    /// An option or setting outside the values it accepts; `range` states them.
    #[error("{what} is {value}; it must be {range}")]
    Range { what: String, value: String, range: String },
    /// A value computed by the model is NaN or infinite (corrupt weights, or an overflow);
    /// `detail` names the first graph node that produced one.
    #[error("non-finite values (NaN or infinity) in {what}: {detail}")]
    NonFinite { what: String, detail: String },
    /// The program's output was closed by its reader before everything was written (a pipe
    /// into `head`, a closed terminal).
    #[error("the output was closed by its reader")]
    OutputClosed,
    /// Anything else about how the API was used.
    #[error("{0}")]
    Usage(String),
}

/// What to do when no adapter is found, for the platform we run on.
pub(crate) const NO_ADAPTER_HINT: &str = if cfg!(target_arch = "wasm32") {
    "this browser offers no WebGPU adapter (try a current Chrome or Edge, or enable WebGPU in the browser's settings)"
} else {
    "install a Vulkan driver (on Debian/Ubuntu without a GPU: `apt-get install mesa-vulkan-drivers libvulkan1` for the lavapipe software GPU) or set WEBFORMER_BACKEND/WEBFORMER_ADAPTER to one that `webformer info` lists"
};

/// Crate-wide result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
