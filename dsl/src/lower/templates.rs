//! Templates: the table of templates a module can reach (its own, and those of the modules it
//! `use`s, under the module's alias), binding a `using` clause's arguments to a template's
//! params, and the checks a template definition gets on its own.

use std::collections::{BTreeMap, HashMap};

use crate::ast::{self, StepItem, TopItem};
use crate::diagnostic::{Code, Diagnostic};
use crate::lower::params::value_text;
use crate::lower::{span_in_string, unknown, Names};
use crate::model::command::{CommandTemplate, Placeholder};

/// The templates visible from one module.
#[derive(Default)]
pub(crate) struct TemplateTable<'a> {
    /// `name` for the module's own templates, `alias.name` for imported ones.
    by_ref: HashMap<String, &'a ast::Template>,
}

impl<'a> TemplateTable<'a> {
    pub fn add_own(&mut self, module: &'a ast::Module) {
        for template in templates_of(module) {
            self.by_ref
                .entry(template.name.text.clone())
                .or_insert(template);
        }
    }

    pub fn add_imported(&mut self, alias: &str, module: &'a ast::Module) {
        for template in templates_of(module) {
            self.by_ref
                .insert(format!("{alias}.{}", template.name.text), template);
        }
    }

    pub fn resolve(
        &self,
        reference: &ast::Name,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<&'a ast::Template> {
        if let Some(template) = self.by_ref.get(&reference.text) {
            return Some(template);
        }
        let mut known: Vec<&str> = self.by_ref.keys().map(String::as_str).collect();
        known.sort_unstable();
        let mut d = unknown(
            Code::UnknownTemplate,
            "template",
            reference,
            known.iter().copied(),
        );
        if d.help.is_none() {
            d = d.help(
                "templates of another module are named `module.template`, after `use module`",
            );
        }
        diags.push(d);
        None
    }
}

fn templates_of(module: &ast::Module) -> impl Iterator<Item = &ast::Template> {
    module.items.nodes().filter_map(|(item, _)| match item {
        TopItem::Template(template) => Some(template),
        _ => None,
    })
}

/// Binds the arguments of `using` to the template's params: the text each `{args.NAME}` becomes.
pub(crate) fn bind_args(
    template: &ast::Template,
    using: &ast::Using,
    diags: &mut Vec<Diagnostic>,
) -> Option<BTreeMap<String, String>> {
    let mut bound: BTreeMap<String, String> = BTreeMap::new();
    let mut ok = true;
    let arity = template.params.len();
    let mut positional = 0;
    for arg in &using.args {
        let param_name = match &arg.name {
            None => {
                let Some(param) = template.params.get(positional) else {
                    diags.push(
                        Diagnostic::new(
                            Code::TemplateArgs,
                            format!(
                                "template `{}` takes {arity} argument{}, but more were given",
                                template.name.text,
                                plural(arity)
                            ),
                        )
                        .label(arg.value.span, "one too many")
                        .label(template.name.span, "the template is declared here")
                        .help(params_help(template)),
                    );
                    ok = false;
                    break;
                };
                positional += 1;
                param.name.text.clone()
            }
            Some(name) => {
                if !template.params.iter().any(|p| p.name.text == name.text) {
                    diags.push(
                        Diagnostic::new(
                            Code::TemplateArgs,
                            format!(
                                "template `{}` has no parameter `{}`",
                                template.name.text, name.text
                            ),
                        )
                        .label(name.span, "unknown parameter")
                        .help(params_help(template)),
                    );
                    ok = false;
                    continue;
                }
                name.text.clone()
            }
        };
        if bound.contains_key(&param_name) {
            diags.push(
                Diagnostic::new(
                    Code::TemplateArgs,
                    format!("argument `{param_name}` is given twice"),
                )
                .label(
                    arg.name.as_ref().map_or(arg.value.span, |n| n.span),
                    "given again here",
                ),
            );
            ok = false;
            continue;
        }
        bound.insert(param_name, value_text(&arg.value));
    }
    for param in &template.params {
        if bound.contains_key(&param.name.text) {
            continue;
        }
        match &param.default {
            Some(default) => {
                bound.insert(param.name.text.clone(), value_text(default));
            }
            None => {
                diags.push(
                    Diagnostic::new(
                        Code::TemplateArgs,
                        format!(
                            "template `{}` needs argument `{}`",
                            template.name.text, param.name.text
                        ),
                    )
                    .label(using.span, format!("`{}` is missing", param.name.text))
                    .label(param.name.span, "declared without a default here")
                    .help(params_help(template)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(bound)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn params_help(template: &ast::Template) -> String {
    let params: Vec<String> = template
        .params
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("{} = {}", p.name.text, crate::lower::params::display(d)),
            None => p.name.text.clone(),
        })
        .collect();
    format!("its parameters are ({})", params.join(", "))
}

/// Checks a template definition on its own: unique param names, and `{args.NAME}` naming a param.
/// Everything else is checked where the template is used, in the using step's context.
pub(crate) fn check_template(template: &ast::Template, diags: &mut Vec<Diagnostic>) {
    let mut names = Names::new("template parameter");
    for param in &template.params {
        names.add(&param.name, diags);
    }
    let check = |s: &ast::Str, diags: &mut Vec<Diagnostic>| {
        let Ok(command) = CommandTemplate::parse(&s.value) else {
            return;
        };
        for placeholder in command.placeholders() {
            if let Placeholder::Arg(name) = placeholder {
                if !template.params.iter().any(|p| p.name.text == name) {
                    let needle = format!("{{args.{name}}}");
                    let at = s.value.find(&needle).unwrap_or(0);
                    diags.push(
                        Diagnostic::new(
                            Code::UnknownField,
                            format!(
                                "template `{}` has no parameter `{name}`",
                                template.name.text
                            ),
                        )
                        .label(span_in_string(s, at, at + needle.len()), "used here")
                        .help(params_help(template)),
                    );
                }
            }
        }
    };
    for (item, _) in template.body.nodes() {
        match item {
            StepItem::Run(s) => check(s, diags),
            StepItem::Env(vars) => {
                for (var, _) in vars.nodes() {
                    check(&var.value, diags);
                }
            }
            _ => {}
        }
    }
}
