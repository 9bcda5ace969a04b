//! The one prompt renderer: a [`Problem`] becomes the exact text (and token ids) a model is given, either through
//! the model's chat template or as plain `Question: … / Answer: ` text.

use temper_chat::{Message, Role};
use temper_tokenizer::Tokenizer;

use crate::error::{Result, TaskError};
use crate::task::Problem;

/// A prompt ready for generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedPrompt {
    /// The exact text given to the tokenizer.
    pub text: String,
    /// Its token ids.
    pub ids: Vec<u32>,
    /// Reference answer for rewards.
    pub reference: Option<String>,
    /// The start of the assistant turn already in `text`; rewards see `prefill + completion`.
    pub prefill: String,
}

/// Renders `problem` for `tok`: with `chat`, the model's chat template over the messages with the assistant turn
/// opened; without it, [`plain_prompt`]. The prefill is appended either way, then the text is tokenised.
/// User turns are trimmed in both forms.
pub fn render(tok: &Tokenizer, problem: &Problem, chat: bool) -> Result<RenderedPrompt> {
    render_with_tools(tok, problem, chat, None)
}

/// [`render`] with `tools` (OpenAI-style JSON schemas) handed to the chat template's `tools` variable, for
/// templates that describe tools themselves ([`temper_tokenizer::ChatTemplate::uses_tools`]); the plain form
/// ignores them.
pub fn render_with_tools(
    tok: &Tokenizer,
    problem: &Problem,
    chat: bool,
    tools: Option<&[serde_json::Value]>,
) -> Result<RenderedPrompt> {
    let text = if chat {
        let template = tok.chat_template().ok_or_else(|| {
            TaskError::Render(
                "chat = true ([rollout] chat, [pairs] chat) needs a model with a chat template"
                    .into(),
            )
        })?;
        let messages: Vec<Message> = problem
            .messages
            .iter()
            .map(|m| match m.role {
                Role::User => Message {
                    content: m.content.trim().to_string(),
                    ..m.clone()
                },
                _ => m.clone(),
            })
            .collect();
        template.render_with_tools(&messages, true, tools)?
    } else {
        plain_prompt(&problem.messages)?
    } + &problem.prefill;
    let ids = tok.encode(&text)?;
    Ok(RenderedPrompt {
        text,
        ids,
        reference: problem.reference.clone(),
        prefill: problem.prefill.clone(),
    })
}

/// The plain-text form of a conversation, for models without a chat template: a lone user message is the prompt
/// as written; otherwise the system instruction and a blank line, each user turn as `Question: <trimmed>` and an
/// open `Answer: ` line, each assistant turn closing that line and a blank line:
///
/// ```text
/// <instruction>
///
/// Question: What is 6 - 2?
/// Answer: <answer>4</answer>
///
/// Question: What is 5 + 3?
/// Answer:
/// ```
///
/// Tool turns have no plain form (an error).
pub fn plain_prompt(messages: &[Message]) -> Result<String> {
    if let [only] = messages
        && only.role == Role::User
    {
        return Ok(only.content.clone());
    }
    let mut text = String::new();
    for m in messages {
        match m.role {
            Role::System => text += &format!("{}\n\n", m.content),
            Role::User => text += &format!("Question: {}\nAnswer: ", m.content.trim()),
            Role::Assistant => text += &format!("{}\n\n", m.content),
            Role::Tool => {
                return Err(TaskError::Render(
                    "a plain prompt has no place for a tool turn: render it with the chat template"
                        .into(),
                ));
            }
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn tokenizer() -> Tokenizer {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/trl-parity/tokenizer/tokenizer.json");
        Tokenizer::from_file(&path).expect("tiny tokenizer")
    }

    #[test]
    fn plain_prompts_are_question_answer_blocks_and_a_lone_question_stays_as_written() -> Result<()>
    {
        let few_shot = [
            Message::system("Be brief."),
            Message::user(" What is 6 - 2? "),
            Message::assistant("<answer>4</answer>"),
            Message::user("What is 5 + 3?"),
        ];
        assert_eq!(
            plain_prompt(&few_shot)?,
            "Be brief.\n\nQuestion: What is 6 - 2?\nAnswer: <answer>4</answer>\n\nQuestion: What is 5 + 3?\nAnswer: "
        );
        assert_eq!(
            plain_prompt(&few_shot[1..])?,
            "Question: What is 6 - 2?\nAnswer: <answer>4</answer>\n\nQuestion: What is 5 + 3?\nAnswer: "
        );
        assert_eq!(plain_prompt(&[Message::user(" raw text ")])?, " raw text ");
        let err = plain_prompt(&[Message::user("q"), Message::tool("call-1", "{}")])
            .expect_err("tool turn");
        assert!(err.to_string().contains("tool turn"), "{err}");
        Ok(())
    }

    #[test]
    fn render_appends_the_prefill_and_tokenises_the_text() -> Result<()> {
        let tok = tokenizer();
        let problem = Problem {
            id: "t/0".into(),
            messages: vec![
                Message::system("Answer."),
                Message::user("  What is 2 + 2?  "),
            ],
            prefill: "<answer>".into(),
            reference: Some("4".into()),
        };
        let chat = render(&tok, &problem, true)?;
        let template = tok
            .chat_template()
            .expect("the tiny tokenizer has a chat template");
        let want = template.render(
            &[Message::system("Answer."), Message::user("What is 2 + 2?")],
            true,
        )? + "<answer>";
        assert_eq!(chat.text, want);
        assert_eq!(chat.ids, tok.encode(&want)?);
        assert_eq!(
            (chat.reference.as_deref(), chat.prefill.as_str()),
            (Some("4"), "<answer>")
        );
        let plain = render(&tok, &problem, false)?;
        assert_eq!(
            plain.text,
            "Answer.\n\nQuestion: What is 2 + 2?\nAnswer: <answer>"
        );
        Ok(())
    }
}
