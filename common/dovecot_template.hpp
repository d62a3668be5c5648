// dovecot_template.hpp - Dovecot's %-variables, for SQL queries and path templates.
//
// Short forms: %u user, %n user without @domain, %d domain, %s service, %h home,
// %r remote IP, %l local IP, %%. Modifiers between % and the letter: L lower-case,
// U upper-case (e.g. %Lu, %Ld). Long forms: %{user} %{username} %{domain} %{service}
// %{home} %{rip} %{lip}, with the same modifiers (%L{user}). Each expanded value
// (not the literal text) goes through `escape` when one is given (SQL quoting).
// Unknown variables are an Error naming them.
#pragma once

#include "common/result.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace postern {

struct DovecotVars {
  std::string user;
  std::string service;
  std::string home;
  std::string rip;
  std::string lip;
};

using TemplateEscaper = std::function<Result<std::string>(std::string_view)>;

Result<std::string> expand_dovecot_template(std::string_view tmpl, const DovecotVars& vars,
                                            const TemplateEscaper& escape = nullptr);
// A cache key for what tmpl would expand to: equal for two variable sets exactly when
// every variable tmpl uses (after its modifiers) is equal. Never a query: values are hex.
Result<std::string> dovecot_template_key(std::string_view tmpl, const DovecotVars& vars);
// Checks the template once at load time.
Status check_dovecot_template(std::string_view tmpl);

}  // namespace postern
