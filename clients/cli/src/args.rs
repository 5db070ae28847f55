//! Arguments more than one command group takes (`--provider` for the model
//! commands and chat), flattened into each group's own grammar.

use clap::Args;

/// `--provider`, shared by the model commands and chat.
#[derive(Debug, Args)]
pub struct ProviderArg {
    /// Ollama endpoint to use (see `omnipanel models providers`); default
    /// "local".
    #[arg(long)]
    pub provider: Option<String>,
}

impl ProviderArg {
    /// The provider for a request; "" asks the agent for "local".
    pub fn name(self) -> String {
        self.provider.unwrap_or_default()
    }
}
