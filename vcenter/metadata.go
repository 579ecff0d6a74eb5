package vcenter

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vapi/rest"
	"github.com/vmware/govmomi/vapi/tags"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Metadata is what a relocation does not carry: tags (category + tag name)
// and custom attribute values.
type Metadata struct {
	Tags       []Tag
	Attributes map[string]string
}

// Tag is a vSphere tag by name: vCenters do not share tag or category IDs.
type Tag struct{ Category, Name string }

// Empty reports whether there is nothing to copy.
func (md *Metadata) Empty() bool { return md == nil || (len(md.Tags) == 0 && len(md.Attributes) == 0) }

// vmType is the managed object type custom field definitions are made for.
const vmType = "VirtualMachine"

// ReadMetadata reads the tags and custom attribute values of vm in vCenter vcName.
func (m *Manager) ReadMetadata(ctx context.Context, vcName, vm string) (*Metadata, error) {
	md := &Metadata{Attributes: map[string]string{}}
	err := m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
		ref, err := m.oneVM(ctx, c, vcName, vm)
		if err != nil {
			return err
		}
		md.Attributes, err = readAttributes(ctx, c, ref)
		if err != nil {
			return fmt.Errorf("read custom attributes of %s in %s: %w", vm, vcName, err)
		}
		return m.withTags(ctx, vcName, c, func(tm *tags.Manager) error {
			md.Tags, err = readTags(ctx, tm, ref)
			if err != nil {
				return fmt.Errorf("read tags of %s in %s: %w", vm, vcName, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, m.scrub(err)
	}
	return md, nil
}

// ApplyMetadata attaches the tags (creating missing categories/tags by name in
// the target) and sets the custom attributes (creating missing field
// definitions for VirtualMachine) on the VM in vcName. It is idempotent: what
// is already there is left alone. It applies as much as it can and returns
// every failure joined.
func (m *Manager) ApplyMetadata(ctx context.Context, vcName, vm string, md *Metadata) error {
	if md.Empty() {
		return nil
	}
	err := m.withSession(ctx, vcName, func(c *vim25.Client, _ *x509.Certificate) error {
		ref, err := m.oneVM(ctx, c, vcName, vm)
		if err != nil {
			return err
		}
		var errs []error
		if len(md.Attributes) > 0 {
			if err := applyAttributes(ctx, c, ref, md.Attributes); err != nil {
				errs = append(errs, fmt.Errorf("custom attributes of %s in %s: %w", vm, vcName, err))
			}
		}
		if len(md.Tags) > 0 {
			err := m.withTags(ctx, vcName, c, func(tm *tags.Manager) error { return applyTags(ctx, tm, ref, md.Tags) })
			if err != nil {
				errs = append(errs, fmt.Errorf("tags of %s in %s: %w", vm, vcName, err))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return m.scrub(err)
	}
	return nil
}

// withTags runs fn with a vAPI tags manager on the session kept for vCenter vcName
// (withVAPI), logged in as its configured user.
func (m *Manager) withTags(ctx context.Context, vcName string, c *vim25.Client, fn func(*tags.Manager) error) error {
	return m.withVAPI(ctx, vcName, c, func(rc *rest.Client) error { return fn(tags.NewManager(rc)) })
}

func readAttributes(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference) (map[string]string, error) {
	var v mo.VirtualMachine
	if err := property.DefaultCollector(c).RetrieveOne(ctx, ref, []string{"customValue", "availableField"}, &v); err != nil {
		return nil, err
	}
	names := make(map[int32]string, len(v.AvailableField))
	for _, f := range v.AvailableField {
		names[f.Key] = f.Name
	}
	out := map[string]string{}
	for _, cv := range v.CustomValue {
		sv, ok := cv.(*types.CustomFieldStringValue)
		if !ok {
			continue
		}
		if name, ok := names[sv.Key]; ok && sv.Value != "" {
			out[name] = sv.Value
		}
	}
	return out, nil
}

func applyAttributes(ctx context.Context, c *vim25.Client, ref types.ManagedObjectReference, attrs map[string]string) error {
	cfm, err := object.GetCustomFieldsManager(c)
	if err != nil {
		return err
	}
	fields, err := cfm.Field(ctx)
	if err != nil {
		return err
	}
	var current map[string]string
	if current, err = readAttributes(ctx, c, ref); err != nil {
		return err
	}
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		value := attrs[name]
		if cur, ok := current[name]; ok && cur == value {
			continue
		}
		key, ok := fieldKey(fields, name)
		if !ok {
			def, err := cfm.Add(ctx, name, vmType, nil, nil)
			if err != nil {
				errs = append(errs, fmt.Errorf("create attribute %q: %w", name, err))
				continue
			}
			key = def.Key
			fields = append(fields, *def)
		}
		if err := cfm.Set(ctx, ref, key, value); err != nil {
			errs = append(errs, fmt.Errorf("set attribute %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// fieldKey finds the definition named name that applies to VMs: one made for
// VirtualMachine first, else a global one.
func fieldKey(fields object.CustomFieldDefList, name string) (int32, bool) {
	for _, want := range []string{vmType, ""} {
		for _, f := range fields {
			if f.Name == name && f.ManagedObjectType == want {
				return f.Key, true
			}
		}
	}
	return 0, false
}

func readTags(ctx context.Context, tm *tags.Manager, ref types.ManagedObjectReference) ([]Tag, error) {
	attached, err := tm.GetAttachedTags(ctx, ref)
	if err != nil {
		return nil, err
	}
	cats := map[string]string{} // id → name
	out := make([]Tag, 0, len(attached))
	for _, t := range attached {
		name, ok := cats[t.CategoryID]
		if !ok {
			cat, err := tm.GetCategory(ctx, t.CategoryID)
			if err != nil {
				return nil, fmt.Errorf("category of tag %q: %w", t.Name, err)
			}
			name = cat.Name
			cats[t.CategoryID] = name
		}
		out = append(out, Tag{Category: name, Name: t.Name})
	}
	sortTags(out)
	return out, nil
}

func sortTags(ts []Tag) {
	slices.SortFunc(ts, func(a, b Tag) int {
		if c := strings.Compare(a.Category, b.Category); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

func applyTags(ctx context.Context, tm *tags.Manager, ref types.ManagedObjectReference, want []Tag) error {
	cats, err := tm.GetCategories(ctx)
	if err != nil {
		return err
	}
	catID := make(map[string]string, len(cats)) // name → id
	for _, c := range cats {
		catID[c.Name] = c.ID
	}
	attached, err := tm.ListAttachedTags(ctx, ref)
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(attached))
	for _, id := range attached {
		have[id] = true
	}
	tagsOf := map[string][]tags.Tag{} // category id → its tags
	var errs []error
	for _, t := range want {
		cid, ok := catID[t.Category]
		if !ok {
			cid, err = tm.CreateCategory(ctx, &tags.Category{Name: t.Category,
				Description:     "created by xvmbot when copying tags",
				Cardinality:     "MULTIPLE",
				AssociableTypes: []string{vmType}})
			if err != nil {
				errs = append(errs, fmt.Errorf("create category %q: %w", t.Category, err))
				continue
			}
			catID[t.Category] = cid
			tagsOf[cid] = []tags.Tag{}
		}
		list, ok := tagsOf[cid]
		if !ok {
			if list, err = tm.GetTagsForCategory(ctx, cid); err != nil {
				errs = append(errs, fmt.Errorf("list tags of category %q: %w", t.Category, err))
				continue
			}
			tagsOf[cid] = list
		}
		tid := ""
		for _, x := range list {
			if x.Name == t.Name {
				tid = x.ID
				break
			}
		}
		if tid == "" {
			if tid, err = tm.CreateTag(ctx, &tags.Tag{Name: t.Name, CategoryID: cid}); err != nil {
				errs = append(errs, fmt.Errorf("create tag %s/%s: %w", t.Category, t.Name, err))
				continue
			}
			tagsOf[cid] = append(tagsOf[cid], tags.Tag{ID: tid, Name: t.Name, CategoryID: cid})
		}
		if have[tid] {
			continue
		}
		if err := tm.AttachTag(ctx, tid, ref); err != nil {
			errs = append(errs, fmt.Errorf("attach tag %s/%s: %w", t.Category, t.Name, err))
			continue
		}
		have[tid] = true
	}
	return errors.Join(errs...)
}
