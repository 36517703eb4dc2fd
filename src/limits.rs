//! Decoder limits (spec §10): every length or count read from a file is checked against these
//! and against the bytes that remain before anything is allocated.

/// Bounds a decoder enforces on untrusted input. The defaults accept every real model up to
/// several GB while keeping a hostile header from allocating more than the caller allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest number of decoded bytes the decoder may hold at once: one tensor, or the graph
    /// and the tensors that go back into it when a whole model is built in memory. The total
    /// decoded from a file is bounded by the expansion rule instead (`max_expansion`).
    pub max_alloc: u64,
    /// Largest number of tensor records.
    pub max_tensors: u64,
    /// Largest rank of a tensor.
    pub max_dims: u32,
    /// Largest element count of one tensor.
    pub max_elements: u64,
    /// Longest tensor name in bytes.
    pub max_name_len: u32,
    /// Largest decompressed graph section in bytes.
    pub max_graph_bytes: u64,
    /// Largest memory the parsed graph and its walk may take (spec §10 `graph memory`): the
    /// census of the protobuf (what parsing builds: messages, strings, repeated values) plus
    /// the per-slot bookkeeping of the walk (names, dims). Also bounded by the expansion rule
    /// over the bytes read, so that a small file cannot build a huge graph.
    pub max_graph_memory: u64,
    /// Deepest nesting of subgraphs (If/Loop/Scan bodies, functions).
    pub max_depth: u32,
    /// Largest tensor-record header in bytes.
    pub max_header_bytes: u32,
    /// Decoded bytes (graph and tensors) may be at most this many times the bytes read so
    /// far, plus `expansion_slack`: a small file cannot claim a huge constant tensor. Real
    /// models expand 1.2x (lossless) to about 32x (1-bit levels); zero-filled tensors more.
    /// In an update the base's canonical bytes count as read too (spec §10).
    pub max_expansion: u64,
    /// See `max_expansion`.
    pub expansion_slack: u64,
}

impl Limits {
    /// The budget for the graph's memory after `read` input bytes (spec §10):
    /// `min(read × max_expansion + expansion_slack, max_graph_memory)`.
    pub fn graph_memory_budget(&self, read: u64) -> u64 {
        read.saturating_mul(self.max_expansion)
            .saturating_add(self.expansion_slack)
            .min(self.max_graph_memory)
    }

    /// The expansion rule (spec §10): decoding `more` bytes, after `decoded` bytes from `read`
    /// input bytes, must keep the total within `read × max_expansion + expansion_slack`; and
    /// what is decoded at once (`more`) within `max_alloc`.
    pub fn check_decoded(
        &self,
        read: u64,
        decoded: u64,
        more: u64,
        offset: u64,
        tensor: Option<&str>,
    ) -> crate::Result<()> {
        let err = |what, value, limit| crate::Error::Limit {
            what,
            value,
            limit,
            offset,
            tensor: tensor.map(str::to_owned),
        };
        if more > self.max_alloc {
            return Err(err("decoded bytes (max_alloc)", more, self.max_alloc));
        }
        let total = decoded.saturating_add(more);
        let bound = read
            .saturating_mul(self.max_expansion)
            .saturating_add(self.expansion_slack);
        if total > bound {
            return Err(err("decoded bytes (expansion over input)", total, bound));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // 16 GiB held at once: no single tensor of current models comes near it; the
            // decoder streams bigger models tensor by tensor.
            max_alloc: 16 << 30,
            max_tensors: 1 << 20,
            max_dims: 64,
            // 4 G elements: the largest single tensor of current LLM exports is ~1 G elements.
            max_elements: 1 << 32,
            max_name_len: 1 << 16,
            max_graph_bytes: 1 << 30,
            // 4 GiB: real graphs without their tensor data take a few MB parsed.
            max_graph_memory: 4 << 30,
            max_depth: 64,
            max_header_bytes: 1 << 20,
            max_expansion: 1024,
            expansion_slack: 8 << 20,
        }
    }
}
