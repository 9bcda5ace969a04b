//! The `CausalLm` seam: anything that maps token ids (with an optional KV cache) to next-token logits.

use burn::tensor::{Int, Tensor};

use crate::llama::{AttentionInfo, KvCache, Llama};

/// A causal language model. Two required methods; [`CausalLm::forward`] composes them.
pub trait CausalLm {
    /// Final hidden states.
    ///
    /// # Shapes
    /// - `input_ids`: `[B, T]` → `[B, T, H]`
    fn hidden(&self, input_ids: Tensor<2, Int>, info: &AttentionInfo, cache: Option<&mut KvCache>) -> Tensor<3>;

    /// The LM head: `[B, T, H] → [B, T, V]`.
    fn lm_head(&self, hidden: Tensor<3>) -> Tensor<3>;

    /// Logits for every new position: `[B, T] → [B, T, V]`.
    fn forward(&self, input_ids: Tensor<2, Int>, info: &AttentionInfo, cache: Option<&mut KvCache>) -> Tensor<3> {
        let hidden = self.hidden(input_ids, info, cache);
        self.lm_head(hidden)
    }
}

impl CausalLm for Llama {
    fn hidden(&self, input_ids: Tensor<2, Int>, info: &AttentionInfo, cache: Option<&mut KvCache>) -> Tensor<3> {
        self.forward_hidden(input_ids, info, cache)
    }

    fn lm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        self.logits(hidden)
    }
}

impl<M: CausalLm + ?Sized> CausalLm for &M {
    fn hidden(&self, input_ids: Tensor<2, Int>, info: &AttentionInfo, cache: Option<&mut KvCache>) -> Tensor<3> {
        (**self).hidden(input_ids, info, cache)
    }

    fn lm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        (**self).lm_head(hidden)
    }
}

impl<M: CausalLm + ?Sized> CausalLm for Box<M> {
    fn hidden(&self, input_ids: Tensor<2, Int>, info: &AttentionInfo, cache: Option<&mut KvCache>) -> Tensor<3> {
        (**self).hidden(input_ids, info, cache)
    }

    fn lm_head(&self, hidden: Tensor<3>) -> Tensor<3> {
        (**self).lm_head(hidden)
    }
}
