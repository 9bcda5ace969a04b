//! The [`Judge`] seam — pairwise [`Judge::judge_pair`] and single [`Judge::grade`] — its inputs
//! ([`PairItem`], [`SingleItem`]) and [`LlmJudge`], a judge made of a [`ChatBackend`] and prompt
//! templates.

use serde::{Deserialize, Serialize};

use crate::error::{JudgeError, Result};
use crate::prompts::{PromptKind, PromptTemplate};
use crate::report::Id;
use crate::verdict::{Unparseable, Verdict, parse_pair_verdict, parse_rating};
use temper_chat::{ChatBackend, GenerationParams};

/// A question with two answers to compare (one line of the pairs file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairItem {
    /// Item id.
    pub id: Id,
    /// The (first-turn) user question.
    pub question: String,
    /// Answer A.
    pub answer_a: String,
    /// Answer B.
    pub answer_b: String,
    /// Reference answer (math templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Second-turn question (multi-turn templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_2: Option<String>,
    /// Answer A to the second turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_a_2: Option<String>,
    /// Answer B to the second turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_b_2: Option<String>,
    /// Reference answer to the second turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_2: Option<String>,
}

impl PairItem {
    /// The same pair with A and B exchanged (for the position swap).
    pub fn swapped(&self) -> Self {
        Self {
            answer_a: self.answer_b.clone(),
            answer_b: self.answer_a.clone(),
            answer_a_2: self.answer_b_2.clone(),
            answer_b_2: self.answer_a_2.clone(),
            ..self.clone()
        }
    }

    /// The value of an MT-bench placeholder (`question`, `question_1`, `answer_a_1`,
    /// `ref_answer_1`, …), if this item has it.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "question" | "question_1" => Some(&self.question),
            "answer_a" | "answer_a_1" => Some(&self.answer_a),
            "answer_b" | "answer_b_1" => Some(&self.answer_b),
            "ref_answer_1" | "reference" => self.reference.as_deref(),
            "question_2" => self.question_2.as_deref(),
            "answer_a_2" => self.answer_a_2.as_deref(),
            "answer_b_2" => self.answer_b_2.as_deref(),
            "ref_answer_2" | "reference_2" => self.reference_2.as_deref(),
            _ => None,
        }
    }
}

/// A question with one answer to grade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SingleItem {
    /// Item id.
    pub id: Id,
    /// The (first-turn) user question.
    pub question: String,
    /// The answer to grade.
    pub answer: String,
    /// Reference answer (math templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Second-turn question (multi-turn templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_2: Option<String>,
    /// Answer to the second turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_2: Option<String>,
    /// Reference answer to the second turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_2: Option<String>,
}

impl SingleItem {
    /// The value of an MT-bench placeholder (`question`, `answer`, `answer_1`, `ref_answer_1`, …).
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "question" | "question_1" => Some(&self.question),
            "answer" | "answer_1" => Some(&self.answer),
            "ref_answer_1" | "reference" => self.reference.as_deref(),
            "question_2" => self.question_2.as_deref(),
            "answer_2" => self.answer_2.as_deref(),
            "ref_answer_2" | "reference_2" => self.reference_2.as_deref(),
            _ => None,
        }
    }
}

/// A judge's answer to one pairwise prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct PairVerdict {
    /// The parsed verdict (in the slots as presented), or why there is none.
    pub verdict: std::result::Result<Verdict, Unparseable>,
    /// The judge's raw reply.
    pub reply: String,
}

/// A judge's grade of one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct SingleGrade {
    /// The parsed rating, or why there is none.
    pub rating: std::result::Result<f64, Unparseable>,
    /// The judge's raw reply.
    pub reply: String,
}

/// Something that judges answers: pairwise comparison and single-answer grading.
pub trait Judge {
    /// Compares `item.answer_a` (slot A) with `item.answer_b` (slot B).
    fn judge_pair(&self, item: &PairItem) -> Result<PairVerdict>;
    /// Grades `item.answer`.
    fn grade(&self, item: &SingleItem) -> Result<SingleGrade>;
}

impl<T: Judge + ?Sized> Judge for &T {
    fn judge_pair(&self, item: &PairItem) -> Result<PairVerdict> {
        (**self).judge_pair(item)
    }
    fn grade(&self, item: &SingleItem) -> Result<SingleGrade> {
        (**self).grade(item)
    }
}

/// A judge that prompts a chat model with a template and parses the verdict from its reply.
#[derive(Debug, Clone)]
pub struct LlmJudge<B> {
    backend: B,
    pair_template: PromptTemplate,
    single_template: Option<PromptTemplate>,
    params: GenerationParams,
}

impl<B: ChatBackend> LlmJudge<B> {
    /// A judge with the seed pairwise prompt, no single-grading prompt and greedy decoding of up to 2048
    /// tokens (`GenerationParams::greedy(2048)`, FastChat's judge setting).
    pub fn new(backend: B) -> Self {
        Self {
            backend,
            pair_template: PromptTemplate::seed_pairwise(),
            single_template: None,
            params: GenerationParams::greedy(2048),
        }
    }

    /// Uses `template` (which must be pairwise) for [`Judge::judge_pair`].
    pub fn with_pair_template(mut self, template: PromptTemplate) -> Result<Self> {
        if template.kind != PromptKind::Pairwise {
            return Err(JudgeError::Config(format!(
                "template `{}` is not pairwise",
                template.name
            )));
        }
        self.pair_template = template;
        Ok(self)
    }

    /// Uses `template` (which must be single) for [`Judge::grade`].
    pub fn with_single_template(mut self, template: PromptTemplate) -> Result<Self> {
        if template.kind != PromptKind::Single {
            return Err(JudgeError::Config(format!(
                "template `{}` is not a single-answer template",
                template.name
            )));
        }
        self.single_template = Some(template);
        Ok(self)
    }

    /// Sets the generation parameters.
    pub fn with_params(mut self, params: GenerationParams) -> Self {
        self.params = params;
        self
    }

    /// The chat back end.
    pub fn backend(&self) -> &B {
        &self.backend
    }
}

impl<B: ChatBackend> Judge for LlmJudge<B> {
    fn judge_pair(&self, item: &PairItem) -> Result<PairVerdict> {
        let messages = self.pair_template.render(&item.id, |f| item.field(f))?;
        let reply = self.backend.complete(&messages, &self.params)?;
        Ok(PairVerdict {
            verdict: parse_pair_verdict(&reply),
            reply,
        })
    }

    fn grade(&self, item: &SingleItem) -> Result<SingleGrade> {
        let template = self.single_template.as_ref().ok_or_else(|| {
            JudgeError::Config("no single-answer template set (with_single_template)".into())
        })?;
        let messages = template.render(&item.id, |f| item.field(f))?;
        let reply = self.backend.complete(&messages, &self.params)?;
        Ok(SingleGrade {
            rating: parse_rating(&reply),
            reply,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Winner;
    use temper_chat::Message;

    struct LastUser;
    impl ChatBackend for LastUser {
        /// Echoes the user prompt followed by a verdict, so tests can see what was rendered.
        fn complete(
            &self,
            messages: &[Message],
            _: &GenerationParams,
        ) -> temper_chat::Result<String> {
            Ok(format!(
                "{}\n[[B]]",
                messages.last().map(|m| m.content.as_str()).unwrap_or("")
            ))
        }
    }

    #[test]
    fn multi_turn_fields_and_swap_cover_both_turns() -> Result<()> {
        let item = PairItem {
            id: "7".into(),
            question: "q1".into(),
            answer_a: "a1".into(),
            answer_b: "b1".into(),
            reference: Some("r1".into()),
            question_2: Some("q2".into()),
            answer_a_2: Some("a2".into()),
            answer_b_2: Some("b2".into()),
            reference_2: Some("r2".into()),
        };
        let names = [
            "question_1",
            "answer_a_1",
            "answer_b_1",
            "ref_answer_1",
            "question_2",
            "answer_a_2",
            "answer_b_2",
            "ref_answer_2",
        ];
        let got: Vec<Option<&str>> = names.iter().map(|n| item.field(n)).collect();
        assert_eq!(
            got,
            [
                Some("q1"),
                Some("a1"),
                Some("b1"),
                Some("r1"),
                Some("q2"),
                Some("a2"),
                Some("b2"),
                Some("r2")
            ]
        );
        let sw = item.swapped();
        let got: Vec<Option<&str>> = names.iter().map(|n| sw.field(n)).collect();
        assert_eq!(
            got,
            [
                Some("q1"),
                Some("b1"),
                Some("a1"),
                Some("r1"),
                Some("q2"),
                Some("b2"),
                Some("a2"),
                Some("r2")
            ]
        );
        assert_eq!(item.field("answer"), None);

        let template = PromptTemplate {
            name: "t".into(),
            kind: PromptKind::Pairwise,
            system_prompt: "sys".into(),
            prompt_template: "{question_2}|{answer_a_2}|{answer_b_2}".into(),
            output_format: "[[A]]".into(),
            description: String::new(),
            category: String::new(),
        };
        let judge = LlmJudge::new(LastUser).with_pair_template(template)?;
        let v = judge.judge_pair(&item)?;
        assert_eq!(v.reply, "q2|a2|b2\n[[B]]");
        assert_eq!(v.verdict.map(|v| v.winner()), Ok(Winner::B));
        Ok(())
    }
}
