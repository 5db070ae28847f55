//! The Chat tab: pick a model (the project's preferred one preselected), stream the answer with stop, the project's conversations kept by the agent, copy a code block, tokens/s and time to first token, and errors shown in place with the action that fixes them.
//!
//! The tab only draws [`ChatState`] and pushes commands: it asks for the
//! project's conversations when it shows, when the project changes and when
//! the agent says they changed (never on a timer), and the reply streams in
//! through the backend.

use egui::{Color32, Key, KeyboardShortcut, Modifiers, RichText};
use omnipanel_client::{
    display,
    proto::v1::{ConversationMessage, Project},
};

use crate::core::{
    backend::Command,
    state::AgentState,
    workspace::chat::{
        Ask, ChatCommand, ChatFix, ChatState, Exchange, ModelChoice, Segment, segments,
    },
};

/// Red, as the other tabs write errors.
const ERROR: Color32 = Color32::from_rgb(0xe5, 0x39, 0x35);

/// The tab's own UI state (what is typed and picked).
#[derive(Debug, Default)]
pub(super) struct ChatTab {
    /// The message being typed.
    input: String,
    /// The model the user picked, for the project (id) it was picked in.
    picked: Option<(String, ModelChoice)>,
    /// The model last in effect: kept when the list empties (Ollama
    /// stopped) so the error says which model and the fix pulls it.
    last: Option<ModelChoice>,
    /// What the conversations were last read for: (project, the state's
    /// revision, connected). Read again when any of it changes.
    listed: Option<(String, u64, bool)>,
    /// The conversation whose deletion awaits "Delete" or "Cancel": (id,
    /// title).
    deleting: Option<(String, String)>,
}

impl ChatTab {
    /// Close the open dialog (Esc); whether one was open.
    pub(super) fn close_dialog(&mut self) -> bool {
        self.deleting.take().is_some()
    }

    /// Draw the tab for `project` (`None`: no project open yet).
    pub(super) fn show(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        project: Option<&Project>,
        out: &mut Vec<Command>,
    ) {
        let Some(project) = project else {
            ui.heading("Chat");
            ui.label(
                "No project open: add a folder on the Projects tab (Ctrl+3), then chat about it here. \
                 Conversations are kept per project.",
            );
            return;
        };
        let chat = &state.chat;
        self.read_when_needed(state, project, out);
        let options = model_options(state);
        let model = self.choice(state, project, &options);
        self.model_row(ui, state, project, &options, model.as_ref(), out);
        ui.separator();
        let dialog_was_open = self.deleting.is_some();
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(210.0);
                self.conversations(ui, chat, project, model.as_ref(), out);
            });
            ui.separator();
            ui.vertical(|ui| {
                self.conversation(ui, state, project, model.as_ref(), out);
            });
        });
        self.delete_dialog(ui, project, out, dialog_was_open);
    }

    /// Ask for the project's conversations (and the models) when the tab
    /// shows for a project, on reconnecting, and after the agent said they
    /// changed; and the shown conversation again with them.
    fn read_when_needed(&mut self, state: &AgentState, project: &Project, out: &mut Vec<Command>) {
        let connected = state.connected();
        let key = (project.id.clone(), state.chat.revision, connected);
        if !connected || self.listed.as_ref() == Some(&key) {
            return;
        }
        let same_project = self
            .listed
            .as_ref()
            .is_some_and(|(id, ..)| *id == project.id);
        self.listed = Some(key);
        out.push(Command::Chat(ChatCommand::List(project.id.clone())));
        if let Some(shown) = &state.chat.shown
            && same_project
            && shown.project_id == project.id
        {
            out.push(Command::Chat(ChatCommand::Open(shown.id.clone())));
        }
    }

    /// The model in effect: the one picked here, else the project's
    /// preferred one, else the default, else the first listed.
    fn choice(
        &mut self,
        state: &AgentState,
        project: &Project,
        options: &[ModelChoice],
    ) -> Option<ModelChoice> {
        let picked = self
            .picked
            .as_ref()
            .filter(|(id, _)| *id == project.id)
            .map(|(_, m)| m.clone());
        let preferred = (!project.preferred_model.is_empty()).then(|| ModelChoice {
            provider: project.preferred_provider.clone(),
            name: project.preferred_model.clone(),
        });
        let default = state.default_model().map(|name| ModelChoice {
            provider: String::new(),
            name: name.to_owned(),
        });
        let choice = picked
            .or(preferred)
            .or(default)
            .or_else(|| options.first().cloned())
            .or_else(|| self.last.clone());
        if choice.is_some() {
            self.last.clone_from(&choice);
        }
        choice
    }

    fn model_row(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        project: &Project,
        options: &[ModelChoice],
        model: Option<&ModelChoice>,
        out: &mut Vec<Command>,
    ) {
        ui.horizontal(|ui| {
            let label = ui.label("Model:");
            let shown = model.map_or_else(|| "(default model)".to_owned(), ModelChoice::label);
            let combo = egui::ComboBox::from_id_salt("chat-model")
                .selected_text(shown)
                .width(260.0)
                .show_ui(ui, |ui| {
                    for option in options {
                        let selected = model == Some(option);
                        if ui.selectable_label(selected, option.label()).clicked() {
                            self.picked = Some((project.id.clone(), option.clone()));
                        }
                    }
                });
            let _ = combo.response.labelled_by(label.id);
            let preferred = display::preferred_model(project);
            if let Some(model) = model
                && preferred.as_deref() != Some(model.label().as_str())
                && ui
                    .button("Use for this project")
                    .on_hover_text("Make it the model this project's chats and tools use")
                    .clicked()
            {
                out.push(Command::Chat(ChatCommand::UseForProject {
                    project: project.id.clone(),
                    model: model.clone(),
                }));
            }
            if preferred.is_some() && preferred == model.map(ModelChoice::label) {
                ui.weak("(this project's model)");
            }
        });
        if options.is_empty() {
            ui.horizontal(|ui| {
                ui.label(format!(
                    "No models yet: pull {} (or start Ollama on the Overview tab).",
                    super::SUGGESTED_MODEL
                ));
                if ui
                    .button(format!("Pull {}", super::SUGGESTED_MODEL))
                    .clicked()
                {
                    out.push(Command::Pull(super::SUGGESTED_MODEL.to_owned()));
                }
            });
        }
        notice_line(ui, state, "chat:model");
    }

    fn conversations(
        &mut self,
        ui: &mut egui::Ui,
        chat: &ChatState,
        project: &Project,
        model: Option<&ModelChoice>,
        out: &mut Vec<Command>,
    ) {
        ui.strong(format!("Conversations in {}", project_name(project)));
        if chat.unsupported {
            ui.weak("This agent keeps no conversations: this chat lasts while the panel runs.");
            return;
        }
        if ui.button("New conversation").clicked() {
            out.push(Command::Chat(ChatCommand::New {
                project: project.id.clone(),
                model: model.map(ModelChoice::label).unwrap_or_default(),
            }));
        }
        let listed = chat.project.as_deref() == Some(project.id.as_str());
        if listed && chat.conversations.is_empty() {
            ui.weak("None yet: type a message to start one.");
        }
        let shown = chat.shown.as_ref().map(|c| c.id.as_str());
        for conversation in chat.conversations.iter().filter(|_| listed) {
            let title = conversation_title(&conversation.title);
            let selected = shown == Some(conversation.id.as_str());
            let response = ui.selectable_label(selected, &title).on_hover_text(format!(
                "{} messages · {}",
                conversation.message_count,
                display::relative_time(conversation.updated_unix_ms)
            ));
            if response.clicked() && !selected {
                out.push(Command::Chat(ChatCommand::Open(conversation.id.clone())));
            }
        }
    }

    fn conversation(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        project: &Project,
        model: Option<&ModelChoice>,
        out: &mut Vec<Command>,
    ) {
        let chat = &state.chat;
        if let Some(shown) = &chat.shown {
            ui.horizontal(|ui| {
                let title = conversation_title(&shown.title);
                ui.heading(&title);
                if ui.button("Delete…").clicked() {
                    self.deleting = Some((shown.id.clone(), title));
                }
            });
        }
        notice_line(ui, state, "chat:conversations");
        if chat.messages.is_empty() && chat.exchange.is_none() {
            ui.weak(format!(
                "Ask anything about {}: type below; Enter sends, Shift+Enter starts a new line.",
                project_name(project)
            ));
        }
        for message in &chat.messages {
            show_message(ui, message);
        }
        if let Some(exchange) = &chat.exchange {
            self.exchange(ui, chat, exchange, out);
        }
        ui.add_space(6.0);
        // Its own id, independent of everything drawn before it: the
        // messages above grow while a reply streams, the model row gains a
        // line when the models go, and an id counted from them would move,
        // losing the field's focus (and a click on Send that lands as they
        // change). Not `push_id`: in egui its widgets' ids still mix in the
        // parent's count of what came before; `scope_id` does not. The chat
        // draws one input and one fix a frame, so the ids are unique.
        ui.scope_builder(
            egui::UiBuilder::new().scope_id(egui::Id::unique("chat-input")),
            |ui| self.input(ui, state, project, model, out),
        );
    }

    fn exchange(
        &mut self,
        ui: &mut egui::Ui,
        chat: &ChatState,
        exchange: &Exchange,
        out: &mut Vec<Command>,
    ) {
        if !exchange.question.is_empty() && chat.shows_question(exchange) {
            bubble(ui, "You", &exchange.question, None);
        }
        let stored_reply = exchange.stored && chat.messages.len() >= exchange.base + 2;
        if !stored_reply && (!exchange.reply.is_empty() || !exchange.done) {
            let who = format!("Assistant · {}", exchange.model);
            let footer = if !exchange.done {
                Some("streaming…".to_owned())
            } else if exchange.stopped {
                Some("stopped".to_owned())
            } else {
                exchange.stats.as_ref().map(display::generation_stats)
            };
            bubble(ui, &who, &exchange.reply, footer.as_deref());
        }
        if let Some(error) = &exchange.error {
            ui.label(RichText::new(&error.message).color(ERROR));
            let fix = match &error.fix {
                Some(ChatFix::StartOllama) => {
                    Some(("Start Ollama".to_owned(), Command::StartServer))
                }
                Some(ChatFix::Pull(model)) => {
                    Some((format!("Pull {model}"), Command::Pull(model.clone())))
                }
                None => None,
            };
            // A fixed id, for the same reason as the input's.
            ui.scope_builder(
                egui::UiBuilder::new().scope_id(egui::Id::unique("chat-fix")),
                |ui| {
                    if let Some((label, command)) = fix
                        && ui.button(label).clicked()
                    {
                        out.push(command);
                    }
                },
            );
        }
    }

    fn input(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        project: &Project,
        model: Option<&ModelChoice>,
        out: &mut Vec<Command>,
    ) {
        let chat = &state.chat;
        let label = ui.label("Message:");
        let edit = ui
            .add(
                egui::TextEdit::multiline(&mut self.input)
                    .hint_text("Ask the model…")
                    .desired_rows(3)
                    .desired_width(f32::INFINITY)
                    // Enter sends; Shift+Enter is the new line.
                    .return_key(KeyboardShortcut::new(Modifiers::SHIFT, Key::Enter)),
            )
            .labelled_by(label.id);
        let enter =
            edit.has_focus() && ui.input(|i| i.key_pressed(Key::Enter) && !i.modifiers.shift);
        let ready = !chat.streaming() && !self.input.trim().is_empty() && state.connected();
        ui.horizontal(|ui| {
            let send = ui.add_enabled(ready, egui::Button::new("Send")).clicked();
            if (send || (enter && ready))
                && let Some(ask) = self.ask(chat, project, model)
            {
                self.input.clear();
                out.push(Command::Chat(ChatCommand::Send(ask)));
            }
            if chat.streaming() {
                if ui.button("Stop").clicked() {
                    out.push(Command::Chat(ChatCommand::Stop));
                }
                ui.spinner();
            }
            ui.weak("Enter sends · Shift+Enter new line");
        });
    }

    /// The question typed, for the shown conversation (or a new one).
    fn ask(&self, chat: &ChatState, project: &Project, model: Option<&ModelChoice>) -> Option<Ask> {
        let text = self.input.trim().to_owned();
        if text.is_empty() {
            return None;
        }
        Some(Ask {
            project: project.id.clone(),
            conversation: chat.shown.as_ref().map(|c| c.id.clone()),
            model: model.cloned().unwrap_or_default(),
            text,
            // Sent only to an agent that keeps no conversations.
            history: chat
                .messages
                .iter()
                .map(|m| (m.role.clone(), m.content.clone()))
                .collect(),
        })
    }

    fn delete_dialog(
        &mut self,
        ui: &mut egui::Ui,
        project: &Project,
        out: &mut Vec<Command>,
        was_open: bool,
    ) {
        let Some((id, title)) = self.deleting.clone() else {
            return;
        };
        let mut answer = None;
        egui::Modal::new(egui::Id::unique("chat-delete-dialog")).show(ui.ctx(), |ui| {
            ui.heading(format!("Delete \"{title}\"?"));
            ui.label("Its messages are deleted for every client (VS Code too).");
            ui.weak("Enter deletes · Esc cancels");
            ui.horizontal(|ui| {
                if ui.button("Delete").clicked() {
                    answer = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(false);
                }
            });
        });
        // Enter answers only once the dialog shows: the Enter that pressed
        // "Delete…" from the keyboard must not also confirm.
        if answer.is_none() && was_open && ui.input(|i| i.key_pressed(Key::Enter)) {
            answer = Some(true);
        }
        match answer {
            Some(true) => {
                out.push(Command::Chat(ChatCommand::Delete {
                    id,
                    project: project.id.clone(),
                }));
                self.deleting = None;
            }
            Some(false) => self.deleting = None,
            None => {}
        }
    }
}

/// Every model the picker offers: every provider's (as last read for the
/// tab), and the local ones the panel mirrors (a model pulled since
/// appears at once); each once.
fn model_options(state: &AgentState) -> Vec<ModelChoice> {
    let mut options: Vec<ModelChoice> = Vec::new();
    for model in state.chat.models.iter().chain(&state.models) {
        let choice = ModelChoice::of(model);
        if !options.iter().any(|o| o.label() == choice.label()) {
            options.push(choice);
        }
    }
    options
}

fn project_name(project: &Project) -> &str {
    if project.name.is_empty() {
        &project.path
    } else {
        &project.name
    }
}

fn conversation_title(title: &str) -> String {
    let title = display::one_line(title);
    if title.is_empty() {
        "New conversation".to_owned()
    } else {
        title
    }
}

/// A failed conversation read or model choice, in red where it was asked.
fn notice_line(ui: &mut egui::Ui, state: &AgentState, key: &str) {
    if let Some(notice) = state.notice(key).filter(|n| !n.message.is_empty()) {
        let color = if notice.error {
            ERROR
        } else {
            Color32::from_rgb(0x43, 0xa0, 0x47)
        };
        ui.label(RichText::new(&notice.message).color(color));
    }
}

fn show_message(ui: &mut egui::Ui, message: &ConversationMessage) {
    let (who, footer) = if message.role == "user" {
        ("You".to_owned(), None)
    } else if message.role == "assistant" {
        let who = if message.model.is_empty() {
            "Assistant".to_owned()
        } else {
            format!("Assistant · {}", message.model)
        };
        let footer = if message.stopped {
            Some("stopped".to_owned())
        } else {
            message
                .stats
                .as_ref()
                .map(display::generation_stats)
                .filter(|s| !s.is_empty())
        };
        (who, footer)
    } else {
        (message.role.clone(), None)
    };
    bubble(ui, &who, &message.content, footer.as_deref());
}

/// One message: who wrote it, its prose and code blocks (each with
/// "Copy"), and a footer (the reply's statistics).
fn bubble(ui: &mut egui::Ui, who: &str, text: &str, footer: Option<&str>) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.set_width(ui.available_width());
        ui.strong(who);
        for segment in segments(text) {
            match segment {
                Segment::Text(prose) => {
                    ui.label(prose);
                }
                Segment::Code { language, code } => code_block(ui, &language, &code),
            }
        }
        if let Some(footer) = footer.filter(|f| !f.is_empty()) {
            ui.weak(footer);
        }
    });
}

fn code_block(ui: &mut egui::Ui, language: &str, code: &str) {
    egui::Frame::new()
        .fill(ui.visuals().extreme_bg_color)
        .inner_margin(6.0)
        .corner_radius(4.0)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                if !language.is_empty() {
                    ui.weak(language);
                }
                if ui
                    .button("Copy")
                    .on_hover_text("Copy this code block")
                    .clicked()
                {
                    ui.ctx().copy_text(code.to_owned());
                }
            });
            ui.label(RichText::new(code).monospace());
        });
}

#[cfg(test)]
mod tests {
    //! The tab driven through its accessibility tree, without an agent:
    //! what it shows for a state, and what it sends.

    use egui_kittest::{Harness, kittest::Queryable};
    use omnipanel_client::proto::v1::{Conversation, GenerationStats, Model, ServerStatus};

    use super::*;
    use crate::panel::panel_ui::test_panel::{self, Panel};
    use crate::{
        core::{
            state::Update,
            workspace::chat::{ChatError, ChatUpdate},
        },
        panel::panel_ui::Tab,
    };

    fn project() -> Project {
        Project {
            id: "p1".into(),
            name: "demo".into(),
            path: "/home/u/demo".into(),
            open: true,
            ..Default::default()
        }
    }

    /// Connected, project "demo" open and listed, model "llama3.2:1b"
    /// installed and default.
    fn state() -> AgentState {
        let mut state = crate::core::state::connected_for_tests();
        state.apply(Update::Projects(vec![project()]));
        state.apply(Update::Server(ServerStatus {
            default_model: "llama3.2:1b".into(),
            ..Default::default()
        }));
        state.apply(Update::Models(vec![Model {
            name: "llama3.2:1b".into(),
            provider: "local".into(),
            ..Default::default()
        }]));
        state.apply(Update::Chat(ChatUpdate::Listed {
            project: "p1".into(),
            conversations: Vec::new(),
        }));
        state
    }

    fn harness(state: AgentState) -> Harness<'static, Panel> {
        let mut harness = test_panel::harness(Tab::Chat, state, 1000.0, 1200.0);
        // A streaming reply shows a spinner, which repaints: step, do not
        // wait for the UI to settle.
        harness.run_steps(2);
        harness
    }

    fn chat(state: &mut AgentState, update: ChatUpdate) {
        state.apply(Update::Chat(update));
    }

    fn sends(harness: &Harness<'static, Panel>) -> Vec<Ask> {
        harness
            .state()
            .sent
            .iter()
            .filter_map(|c| match c {
                Command::Chat(ChatCommand::Send(ask)) => Some(ask.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn without_a_project_it_says_how_to_open_one() {
        let harness = harness(crate::core::state::connected_for_tests());
        harness.get_by_label_contains("No project open: add a folder on the Projects tab");
    }

    #[test]
    fn it_reads_the_conversations_once_and_enter_sends_with_the_default_model() {
        let mut harness = harness(state());
        let lists = |h: &Harness<'static, Panel>| {
            h.state()
                .sent
                .iter()
                .filter(|c| matches!(c, Command::Chat(ChatCommand::List(_))))
                .count()
        };
        assert_eq!(lists(&harness), 1, "listed not once on showing");
        harness.get_by_label("Model:");
        let field = harness.get_by_label("Message:");
        field.focus();
        field.type_text("hello there");
        harness.run();
        harness.key_press_modifiers(Modifiers::SHIFT, Key::Enter);
        harness.run();
        assert!(sends(&harness).is_empty(), "Shift+Enter sent");
        harness.key_press(Key::Enter);
        harness.run();
        let asked = sends(&harness);
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].text, "hello there");
        assert_eq!(asked[0].model.label(), "llama3.2:1b");
        assert_eq!(asked[0].project, "p1");
        assert_eq!(asked[0].conversation, None);
        assert_eq!(lists(&harness), 1, "listed again without a change");
    }

    #[test]
    fn the_projects_model_is_preselected_and_a_change_rereads() {
        let mut state = state();
        let mut preferring = project();
        preferring.preferred_model = "qwen".into();
        preferring.preferred_provider = "gpu-box".into();
        state.apply(Update::Projects(vec![preferring]));
        let mut harness = harness(state);
        // The picker reads "Model:", its value is the model in effect.
        harness.get_by_value("gpu-box/qwen");
        harness.get_by_label("(this project's model)");
        chat(
            &mut harness.state_mut().state,
            ChatUpdate::Changed(omnipanel_client::proto::v1::ConversationChanged {
                conversation_id: "c9".into(),
                project_id: "p1".into(),
                change: "created".into(),
            }),
        );
        harness.run();
        let lists = harness
            .state()
            .sent
            .iter()
            .filter(|c| matches!(c, Command::Chat(ChatCommand::List(_))))
            .count();
        assert_eq!(lists, 2);
    }

    #[test]
    fn while_a_reply_streams_send_is_off_and_stop_stops() {
        let mut state = state();
        chat(
            &mut state,
            ChatUpdate::Started {
                project: "p1".into(),
                question: "why?".into(),
                conversation: Some("c1".into()),
                model: "llama3.2:1b".into(),
            },
        );
        chat(&mut state, ChatUpdate::Piece("Because".into()));
        let mut harness = harness(state);
        harness.get_by_label("Because");
        harness.get_by_label("streaming…");
        let field = harness.get_by_label("Message:");
        field.focus();
        field.type_text("more");
        harness.run_steps(2);
        harness.get_by_label("Send").click();
        harness.run_steps(2);
        assert!(sends(&harness).is_empty(), "sent while streaming");
        harness.get_by_label("Stop").click();
        harness.run_steps(2);
        assert!(
            harness
                .state()
                .sent
                .contains(&Command::Chat(ChatCommand::Stop))
        );
    }

    #[test]
    fn a_finished_reply_shows_its_code_with_copy_and_its_speed() {
        let mut state = state();
        chat(
            &mut state,
            ChatUpdate::Opened(Conversation {
                id: "c1".into(),
                project_id: "p1".into(),
                title: "Rust help".into(),
                messages: vec![
                    ConversationMessage {
                        role: "user".into(),
                        content: "show me".into(),
                        ..Default::default()
                    },
                    ConversationMessage {
                        role: "assistant".into(),
                        content: "Here:\n```rust\nfn main() {}\n```".into(),
                        model: "llama3.2:1b".into(),
                        stats: Some(GenerationStats {
                            eval_count: 85,
                            eval_duration_ns: 2_000_000_000,
                            time_to_first_token_ns: 350_000_000,
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
        );
        let harness = harness(state);
        harness.get_by_label("Rust help");
        harness.get_by_label("Here:");
        harness.get_by_label("fn main() {}");
        harness.get_by_label("Copy");
        harness.get_by_label("85 tokens · 42.5 tokens/s · first token after 350 ms");
    }

    #[test]
    fn errors_offer_their_fix() {
        let mut state = state();
        chat(
            &mut state,
            ChatUpdate::Started {
                project: "p1".into(),
                question: "hi".into(),
                conversation: Some("c1".into()),
                model: "llama3.2:1b".into(),
            },
        );
        chat(
            &mut state,
            ChatUpdate::Failed(ChatError {
                message: "Ollama is not running".into(),
                fix: Some(ChatFix::StartOllama),
            }),
        );
        let mut harness = harness(state);
        harness.get_by_label("Ollama is not running");
        harness.get_by_label("Start Ollama").click();
        harness.run();
        assert!(harness.state().sent.contains(&Command::StartServer));
        chat(
            &mut harness.state_mut().state,
            ChatUpdate::Failed(ChatError {
                message: "model not found".into(),
                fix: Some(ChatFix::Pull("llama3.2:1b".into())),
            }),
        );
        harness.run();
        harness.get_by_label("Pull llama3.2:1b").click();
        harness.run();
        assert!(
            harness
                .state()
                .sent
                .contains(&Command::Pull("llama3.2:1b".into()))
        );
    }

    #[test]
    fn deleting_asks_first_and_esc_closes_the_dialog_not_the_panel() {
        let mut state = state();
        let conversation = Conversation {
            id: "c1".into(),
            project_id: "p1".into(),
            title: "Old talk".into(),
            ..Default::default()
        };
        chat(
            &mut state,
            ChatUpdate::Listed {
                project: "p1".into(),
                conversations: vec![conversation.clone()],
            },
        );
        chat(&mut state, ChatUpdate::Opened(conversation));
        let mut harness = harness(state);
        harness.get_by_label("Delete…").click();
        harness.run();
        harness.get_by_label("Delete \"Old talk\"?");
        harness.key_press(Key::Escape);
        harness.run();
        assert!(harness.query_by_label("Delete \"Old talk\"?").is_none());
        assert!(!harness.state().ui.close);
        harness.get_by_label("Delete…").click();
        harness.run();
        harness.get_by_label("Delete").click();
        harness.run();
        assert!(
            harness
                .state()
                .sent
                .contains(&Command::Chat(ChatCommand::Delete {
                    id: "c1".into(),
                    project: "p1".into(),
                }))
        );
    }

    #[test]
    fn a_picked_model_becomes_the_projects_and_new_conversations_use_it() {
        let mut state = state();
        chat(
            &mut state,
            ChatUpdate::Models(vec![Model {
                name: "qwen".into(),
                provider: "gpu-box".into(),
                ..Default::default()
            }]),
        );
        let mut harness = harness(state);
        harness.get_by_value("llama3.2:1b").click();
        harness.run();
        harness.get_by_label("gpu-box/qwen").click();
        harness.run();
        harness.get_by_value("gpu-box/qwen");
        harness.get_by_label("Use for this project").click();
        harness.run();
        harness.get_by_label("New conversation").click();
        harness.run();
        let qwen = ModelChoice {
            provider: "gpu-box".into(),
            name: "qwen".into(),
        };
        let sent = &harness.state().sent;
        assert!(sent.contains(&Command::Chat(ChatCommand::UseForProject {
            project: "p1".into(),
            model: qwen,
        })));
        assert!(sent.contains(&Command::Chat(ChatCommand::New {
            project: "p1".into(),
            model: "gpu-box/qwen".into(),
        })));
    }
}
