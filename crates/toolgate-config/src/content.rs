//! `[[resources]]`, `[[resource_templates]]` and `[[prompts]]`: what MCP clients
//! read and fill in besides calling tools.
//!
//! Each entry has a `name` in the tool-name alphabet and a `scope` (default: its
//! name) that a key's scope patterns must match for the key to see it, as they
//! must match a tool's name. Texts are templates: `{name}` is replaced by the
//! argument or URI variable of that name (`{{` and `}}` are literal braces).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// `[[resources]]`: a fixed resource, its content given inline or read from a file
/// at load (and again at each reload).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Name (`[A-Za-z0-9_-]`, unique among resources).
    pub name: Spanned<String>,
    /// Its URI. Default `toolgate://resources/NAME`.
    pub uri: Option<Spanned<String>>,
    /// A title for people.
    pub title: Option<String>,
    /// What it holds.
    pub description: Option<String>,
    /// Its media type. Default `text/plain` for `text`; for `file`, guessed from the
    /// extension (`application/octet-stream` when unknown).
    pub mime_type: Option<String>,
    /// The content, inline.
    pub text: Option<String>,
    /// Or a file (relative to the config's directory), up to 4 MiB: text when its
    /// media type is textual, otherwise served as a base64 `blob`.
    pub file: Option<Spanned<String>>,
    /// Its icons.
    #[serde(default)]
    pub icons: Vec<IconConfig>,
    /// The scope a key needs to see it. Default its name.
    pub scope: Option<String>,
}

/// `[[resource_templates]]`: resources named by a URI template (RFC 6570 simple
/// `{var}` expressions), read from a text template or by calling a tool with the
/// variables as its arguments (which runs as that caller's call: scopes, limits,
/// quotas, deadline and audit apply).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceTemplateConfig {
    /// Name (`[A-Za-z0-9_-]`, unique among templates).
    pub name: Spanned<String>,
    /// The template, such as `orders://{id}/summary`.
    pub uri_template: Spanned<String>,
    /// A title for people.
    pub title: Option<String>,
    /// What its resources hold.
    pub description: Option<String>,
    /// Their media type. Default `text/plain` for `text`, `application/json` for `tool`.
    pub mime_type: Option<String>,
    /// The content, with `{var}` replaced by the URI's values.
    pub text: Option<String>,
    /// Or the tool whose output is the content (its JSON, or its text when it
    /// answers a string).
    pub tool: Option<Spanned<String>>,
    /// Completions for the variables (`completion/complete`), by variable name.
    #[serde(default)]
    pub complete: BTreeMap<String, Spanned<CompletionConfig>>,
    /// Its icons.
    #[serde(default)]
    pub icons: Vec<IconConfig>,
    /// The scope a key needs to see it. Default its name.
    pub scope: Option<String>,
}

/// Where the values of a completion come from: fixed `values` filtered by the
/// prefix typed so far, or a `tool` called with the prefix (for instance a SQL tool
/// `SELECT DISTINCT city FROM shops WHERE city LIKE :prefix || '%' LIMIT 20`), whose
/// rows' first column (or array of strings) are the values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionConfig {
    /// Fixed values.
    #[serde(default)]
    pub values: Vec<String>,
    /// A tool to ask.
    pub tool: Option<String>,
    /// The tool's argument that gets the prefix. Default `prefix`.
    pub argument: Option<String>,
}

/// `[[prompts]]`: a prompt template with arguments.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptConfig {
    /// Name (`[A-Za-z0-9_-]`, unique among prompts).
    pub name: Spanned<String>,
    /// A title for people.
    pub title: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub arguments: Vec<PromptArgumentConfig>,
    /// Its messages, in order (at least one).
    pub messages: Vec<Spanned<PromptMessageConfig>>,
    /// Its icons.
    #[serde(default)]
    pub icons: Vec<IconConfig>,
    /// The scope a key needs to see it. Default its name.
    pub scope: Option<String>,
}

/// One argument of a prompt.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptArgumentConfig {
    /// Its name, as `{name}` in the messages.
    pub name: String,
    /// A title for people.
    pub title: Option<String>,
    /// What to give.
    pub description: Option<String>,
    /// Whether `prompts/get` needs it. Default false (a missing one is empty).
    #[serde(default)]
    pub required: bool,
    /// Completions for it.
    pub complete: Option<Spanned<CompletionConfig>>,
}

/// Who speaks a prompt message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptRole {
    /// The user (the default).
    #[default]
    User,
    /// The assistant.
    Assistant,
}

/// One message of a prompt: exactly one of `text`, `image`, `audio`, `resource`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptMessageConfig {
    /// Who speaks it. Default `user`.
    #[serde(default)]
    pub role: PromptRole,
    /// A text template.
    pub text: Option<String>,
    /// An image file (relative to the config's directory).
    pub image: Option<String>,
    /// An audio file (relative to the config's directory).
    pub audio: Option<String>,
    /// A resource URI (a template: `{arg}` works here too), embedded with its
    /// content when the prompt is got; the caller must be allowed to read it.
    pub resource: Option<String>,
    /// The media type of `image` or `audio`. Default: guessed from the extension.
    pub mime_type: Option<String>,
}

/// An icon of a tool, resource, template or prompt (MCP `icons`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IconConfig {
    /// Where it is: an `https:` URL or a `data:` URI.
    pub src: String,
    /// Its media type, when the URL does not say.
    pub mime_type: Option<String>,
    /// Its sizes (`48x48`, `any`).
    #[serde(default)]
    pub sizes: Vec<String>,
    /// The theme it is for (`light` or `dark`). Default any.
    pub theme: Option<IconTheme>,
}

/// The theme an icon suits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IconTheme {
    /// A light background.
    Light,
    /// A dark background.
    Dark,
}
