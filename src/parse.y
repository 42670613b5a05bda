%{
/* placeholder grammar: replaced by the config parser */
int yylex(void);
void yyerror(const char *s);
%}
%token NUM
%%
file: ;
%%
