//! [`JudgeReward`]: an LLM judge's single-answer grade as a [`Reward`], so a judge can rank samples in
//! best-of-N, weighted vote and search like any other scorer.

use temper_judges::{Judge, SingleItem};
use temper_rewards::{Result, Reward, RewardError, RewardInput, reference_answer};

/// Scores a completion with [`Judge::grade`] (question = the prompt, answer = the completion, reference = the
/// reference's final answer), divided by `scale` (10 for MT-bench's 1–10 ratings). An unparseable grade scores 0,
/// the lowest rating, so it never wins; a failing judge call is an error.
#[derive(Debug, Clone)]
pub struct JudgeReward<J> {
    judge: J,
    scale: f64,
    name: String,
}

impl<J: Judge> JudgeReward<J> {
    /// Ratings of `judge` divided by `scale`, reported under `name` (e.g. `judge:openai:gpt-4o`).
    pub fn new(judge: J, scale: f64, name: impl Into<String>) -> JudgeReward<J> {
        JudgeReward {
            judge,
            scale,
            name: name.into(),
        }
    }
}

impl<J: Judge + Send + Sync> Reward for JudgeReward<J> {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, batch: &[RewardInput<'_>]) -> Result<Vec<f64>> {
        batch
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let item = SingleItem {
                    id: i.to_string(),
                    question: x.prompt.to_string(),
                    answer: x.completion.to_string(),
                    reference: x.reference.and_then(reference_answer),
                    question_2: None,
                    answer_2: None,
                    reference_2: None,
                };
                let grade = self.judge.grade(&item).map_err(|e| RewardError::External {
                    context: format!("{} (item {i})", self.name),
                    message: e.to_string(),
                })?;
                Ok(grade.rating.map_or(0.0, |r| r / self.scale))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use temper_judges::{
        ChatBackend, ChatError, GenerationParams, LlmJudge, Message, PromptKind, PromptTemplate,
    };

    use super::*;

    /// Rates an answer containing the reference `[[9]]`, anything else `[[2]]`, and says nothing parseable
    /// about an empty answer.
    struct Grader;
    impl ChatBackend for Grader {
        fn complete(
            &self,
            messages: &[Message],
            _: &GenerationParams,
        ) -> std::result::Result<String, ChatError> {
            let text = &messages[messages.len() - 1].content;
            Ok(if text.contains("ANSWER: \n") {
                "no rating".into()
            } else if text.contains("ANSWER: 4\n") {
                "Right. Rating: [[9]]".into()
            } else {
                "Wrong. Rating: [[2]]".into()
            })
        }
    }

    #[test]
    fn ratings_become_scores() -> Result<()> {
        let template = PromptTemplate {
            name: "single-test".into(),
            kind: PromptKind::Single,
            system_prompt: "Grade.".into(),
            prompt_template: "QUESTION: {question}\nANSWER: {answer}\nREF: {ref_answer_1}".into(),
            output_format: "[[rating]]".into(),
            description: String::new(),
            category: String::new(),
        };
        let judge = LlmJudge::new(Grader)
            .with_single_template(template)
            .map_err(|e| RewardError::External {
                context: "test".into(),
                message: e.to_string(),
            })?;
        let reward = JudgeReward::new(judge, 10.0, "judge:test");
        let batch = [
            RewardInput::new("2+2?", "4", "4"),
            RewardInput::new("2+2?", "5", "4"),
            RewardInput::new("2+2?", "", "4"),
        ];
        assert_eq!(reward.score(&batch)?, [0.9, 0.2, 0.0]);
        assert_eq!(reward.name(), "judge:test");
        Ok(())
    }
}
