#ifndef CTD_OBJ_NLPARSE_H
#define CTD_OBJ_NLPARSE_H
#endif
