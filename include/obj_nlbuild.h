#ifndef CTD_OBJ_NLBUILD_H
#define CTD_OBJ_NLBUILD_H
#endif
